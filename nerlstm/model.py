"""The character+word BiLSTM encoder with a CRF decoder."""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from nerlstm.batching import Batch
from nerlstm.config import Config
from nerlstm.crf import ConditionalRandomField
from nerlstm.torch_compat import configure_onednn_cache, lstm_direction

# Before the first LSTM call builds a oneDNN primitive: training's ever-new batch shapes
# would otherwise fill oneDNN's large default cache with big LSTM primitives.
configure_onednn_cache()


class CharEncoder(nn.Module):
    """A BiLSTM over a word's characters; its two final states, joined, stand for the word."""

    def __init__(self, num_chars: int, char_dim: int, hidden: int,
                 embedding_dropout: float = 0.0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.lstm = nn.LSTM(char_dim, hidden, batch_first=True, bidirectional=True)
        self.embedding_dropout = embedding_dropout

    def forward(self, char_ids: torch.Tensor, char_lengths: torch.Tensor) -> torch.Tensor:
        """char_ids: (words, chars); char_lengths: (words,) on the CPU. Returns (words, 2*hidden)."""
        embedded = dropout(self.embedding(char_ids), self.embedding_dropout, self.training)
        packed = pack_padded_sequence(embedded, char_lengths, batch_first=True,
                                      enforce_sorted=False)
        _, (final, _) = self.lstm(packed)
        # final shape: (2, words, hidden), forward then backward direction
        return torch.cat([final[0], final[1]], dim=1)


class CharCnn(nn.Module):
    """Convolution over a word's characters, max-pooled over its length (Ma & Hovy 2016)."""

    def __init__(self, num_chars: int, char_dim: int, filters: int, width: int = 3,
                 bounded: bool = True, embedding_dropout: float = 0.0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, filters, width, padding=width // 2)
        self.bounded = bounded
        self.embedding_dropout = embedding_dropout

    # In inference, words are encoded in groups of about equal length, this many at a time.
    GROUP = 512

    def forward(self, char_ids: torch.Tensor, char_lengths: torch.Tensor) -> torch.Tensor:
        """char_ids: (words, chars); char_lengths: (words,). Returns (words, filters)."""
        if self.training or char_ids.shape[0] <= self.GROUP:
            return self._features(char_ids)
        # A tagging batch holds thousands of words, padded to its longest: run the
        # convolution over groups of similar length instead (far fewer padded
        # positions). Each word's features do not depend on its group.
        order = char_lengths.to(char_ids.device).argsort()
        features = self.conv.weight.new_empty(char_ids.shape[0], self.conv.out_channels)
        for start in range(0, len(order), self.GROUP):
            rows = order[start:start + self.GROUP]
            longest = int(char_lengths[rows.cpu()].max())
            features[rows] = self._features(char_ids[rows, :longest])
        return features

    def _features(self, char_ids: torch.Tensor) -> torch.Tensor:
        embedded = dropout(self.embedding(char_ids), self.embedding_dropout, self.training)
        convolved = self.conv(embedded.transpose(1, 2))
        # Positions past a word's end must not win the max: a short word in a batch of long
        # ones would otherwise see padding.
        padding = (char_ids == 0).unsqueeze(1)
        pooled = convolved.masked_fill(padding, float("-inf")).max(dim=2).values
        # Unbounded, the pooled features grew to ten times the word embeddings' size and the
        # word BiLSTM leaned on them alone; tanh keeps them in the BiLSTM encoder's range.
        # tanh is monotonic, so applying it after the max equals applying it before.
        return torch.tanh(pooled) if self.bounded else pooled


def dropout(inputs: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Element-wise dropout, as ``F.dropout``. Its mask comes from uniform draws, which a CPU
    makes faster than torch's Bernoulli draws."""
    if not training or rate == 0.0:
        return inputs
    scaled_keep = torch.rand_like(inputs).ge_(rate).mul_(1.0 / (1.0 - rate))
    return inputs * scaled_keep


def locked_dropout(inputs: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Dropout with one mask per sequence, shared by all its time steps (variational dropout,
    Gal & Ghahramani 2016). inputs: (batch, length, features)."""
    if not training or rate == 0.0:
        return inputs
    keep = inputs.new_empty(inputs.shape[0], 1, inputs.shape[2]).bernoulli_(1.0 - rate)
    return inputs * keep / (1.0 - rate)


def rows_of(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for a 2-D table: as an embedding lookup, whose backward pass sums
    gradients faster than indexing's on a CPU."""
    return nn.functional.embedding(index, table)


def pooled_by_group(states: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """For each token, the mean of ``states`` over the tokens sharing its group id."""
    flat_ids = group_ids.reshape(-1)
    flat = states.reshape(flat_ids.shape[0], -1)
    groups = int(flat_ids.max()) + 1
    sums = flat.new_zeros(groups, flat.shape[1]).index_add(0, flat_ids, flat)
    counts = torch.bincount(flat_ids, minlength=groups).clamp(min=1).unsqueeze(1)
    return rows_of(sums / counts, flat_ids).view_as(states)


def reversed_within_lengths(lengths: torch.Tensor, length: int,
                            device: torch.device | str = "cpu") -> torch.Tensor:
    """Shape (rows, length): for each row, the positions of its first ``lengths`` items in
    reverse order, then its padding positions unchanged. Its own inverse."""
    positions = torch.arange(length, device=device).unsqueeze(0)
    ends = lengths.to(positions.device).unsqueeze(1)
    return torch.where(positions < ends, ends - 1 - positions, positions)


def bidirectional_lstm(lstm: nn.LSTM, inputs: torch.Tensor, lengths: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
    """What ``lstm`` (batch-first, bidirectional) returns for right-padded ``inputs`` packed
    by ``lengths``, padding zeroed, computed without packing.

    A packed sequence takes ATen's step-by-step LSTM, whose autograd records each time step;
    padded input takes the fused oneDNN LSTM on a CPU, one operation each way. A batch of
    whole documents is mostly padding, so its long and short sentences
    run apart when that saves enough padded steps. (Tagging runs :func:`lstm_products`.)
    """
    groups = length_groups(lengths.tolist())
    if len(groups) == 1:
        encoded = _padded_bidirectional_lstm(lstm, inputs, lengths)
    else:
        # Uninitialised: what no group writes is padding, zeroed below.
        encoded = inputs.new_empty(inputs.shape[0], inputs.shape[1], 2 * lstm.hidden_size)
        for rows in groups:
            group_length = int(lengths[rows[0]])
            index = torch.tensor(rows, device=inputs.device)
            states = _padded_bidirectional_lstm(
                lstm, inputs.index_select(0, index)[:, :group_length], lengths[rows])
            encoded[index, :group_length] = states.to(encoded.dtype)  # bfloat16 under autocast
    return torch.where(mask.unsqueeze(2), encoded, 0.0)


# Splitting a batch must save at least this share of its padded steps: each extra
# group costs two more LSTM calls.
MIN_GROUP_SAVING = 0.2


def length_groups(lengths: list[int]) -> list[list[int]]:
    """Row indices, longest first, in one group or in the two groups with the fewest padded
    steps (rows times the group's longest length) where that saves enough."""
    order = sorted(range(len(lengths)), key=lambda row: -lengths[row])
    longest = lengths[order[0]]
    whole = longest * len(order)
    best_cells, best_cut = whole, 0
    for cut in range(1, len(order)):
        cells = longest * cut + lengths[order[cut]] * (len(order) - cut)
        if cells < best_cells:
            best_cells, best_cut = cells, cut
    if best_cells > (1.0 - MIN_GROUP_SAVING) * whole:
        return [order]
    return [order[:best_cut], order[best_cut:]]


# Outside training, an LSTM call costs about the same per padded cell (row and time step)
# at 4 rows as at 256, so padding is pure waste and extra groups are cheap: a group costs
# about one more cell per time step and this many cells for its calls and copies. In
# training, each group adds a backward pass as well: more than two groups were slower.
GROUP_CELLS = 8


def cheapest_length_groups(lengths: list[int]) -> list[list[int]]:
    """Row indices, longest first, cut into the runs of similar length that cost least:
    padded cells, plus one cell per time step and GROUP_CELLS for each run."""
    order = sorted(range(len(lengths)), key=lambda row: -lengths[row])
    # Runs never split rows of equal length: cut points are where the length changes.
    starts = [position for position in range(len(order))
              if position == 0 or lengths[order[position]] != lengths[order[position - 1]]]
    bounds = [*starts, len(order)]
    # cost[j]: the cheapest cutting of the rows before bounds[j]; its last run starts at
    # bounds[cut[j]]
    cost = [0] * len(bounds)
    cut = [0] * len(bounds)
    for j in range(1, len(bounds)):
        cost[j], cut[j] = min(
            (cost[i] + lengths[order[bounds[i]]] * (bounds[j] - bounds[i] + 1) + GROUP_CELLS, i)
            for i in range(j))
    groups = []
    j = len(starts)
    while j:
        groups.append(order[bounds[cut[j]]:bounds[j]])
        j = cut[j]
    return groups[::-1]


def _padded_bidirectional_lstm(lstm: nn.LSTM, inputs: torch.Tensor, lengths: torch.Tensor
                               ) -> torch.Tensor:
    """The bidirectional LSTM over right-padded rows; what it leaves at padding is garbage."""
    forward, backward, backwards = _padded_directions(lstm, inputs, lengths)
    return torch.cat([forward, backward.gather(1, backwards.expand(-1, -1, backward.shape[2]))],
                     dim=2)


def _padded_directions(lstm: nn.LSTM, inputs: torch.Tensor, lengths: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The last layer's forward states, its backward states in reverse order within each
    row's length, and the (rows, length, 1) positions that put those back in order.

    The backward direction reads each row reversed within its length, so padding never
    reaches a real position's state; what the states hold at padding is garbage."""
    rows, length, _ = inputs.shape
    backwards = reversed_within_lengths(lengths, length, inputs.device).unsqueeze(2)
    initial = inputs.new_zeros(1, rows, lstm.hidden_size)
    # per layer, the forward direction's weights (and biases), then the backward one's
    weights = lstm.all_weights
    outputs = inputs
    for layer in range(lstm.num_layers):
        forward = lstm_direction(outputs, initial, weights[2 * layer], lstm.bias, lstm.training)
        flipped = outputs.gather(1, backwards.expand(-1, -1, outputs.shape[2]))
        backward = lstm_direction(flipped, initial, weights[2 * layer + 1], lstm.bias,
                                  lstm.training)
        if layer + 1 < lstm.num_layers:
            outputs = torch.cat(
                [forward, backward.gather(1, backwards.expand(-1, -1, backward.shape[2]))], dim=2)
            outputs = dropout(outputs, lstm.dropout, lstm.training)
    return forward, backward, backwards


def lstm_products(lstm: nn.LSTM, inputs: torch.Tensor, lengths: torch.Tensor,
                  mask: torch.Tensor, weight: torch.Tensor,
                  lstm_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``linear(bidirectional_lstm(lstm, inputs, lengths, mask), weight)`` in float32, with
    0 at padding, the LSTM run in ``lstm_dtype``; for inference.

    Each length group's two directions are multiplied by their halves of ``weight`` apart:
    the states are never joined, put back in order, scattered into the batch or masked;
    only the products are, a few numbers per token against 2 x hidden.
    """
    hidden = lstm.hidden_size
    forward_weight, backward_weight = weight[:, :hidden], weight[:, hidden:]
    products = weight.new_empty(inputs.shape[0], inputs.shape[1], weight.shape[0])
    for rows in cheapest_length_groups(lengths.tolist()):
        length = int(lengths[rows[0]])
        index = torch.tensor(rows, device=inputs.device)
        with reduced_precision(inputs.device.type, lstm_dtype):
            forward, backward, backwards = _padded_directions(
                lstm, inputs.index_select(0, index)[:, :length], lengths[rows])
        backward_products = nn.functional.linear(backward.float(), backward_weight)
        products[index, :length] = (
            nn.functional.linear(forward.float(), forward_weight)
            + backward_products.gather(1, backwards.expand(-1, -1, weight.shape[0])))
    # Rows shorter than their group's longest got garbage past their ends.
    return products.masked_fill_(~mask.unsqueeze(2), 0.0)


def reduced_precision(device_type: str, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype``, or nothing for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def pooled_blocks(config: Config) -> int:
    """How many state vectors the output layer reads per token: its own, its word's mean
    over the document, the document's mean."""
    if not config.doc_context:
        return 1
    return 3 if config.doc_summary else 2


def char_features(config: Config) -> int:
    """How many character features each token brings to the word BiLSTM."""
    return config.char_projection or 2 * config.char_hidden


def char_encoder(config: Config, num_chars: int) -> nn.Module:
    if config.char_encoder == "lstm":
        return CharEncoder(num_chars, config.char_dim, config.char_hidden,
                           embedding_dropout=config.char_dropout)
    if config.char_encoder == "cnn":
        return CharCnn(num_chars, config.char_dim, 2 * config.char_hidden,
                       width=config.char_cnn_width, bounded=config.char_cnn_tanh,
                       embedding_dropout=config.char_dropout)
    raise ValueError(f"unknown character encoder {config.char_encoder!r}")


class BiLstmCrf(nn.Module):
    """Word embedding + character BiLSTM or CNN -> word BiLSTM -> linear -> CRF."""

    def __init__(self, config: Config, num_words: int, num_chars: int, num_tags: int) -> None:
        super().__init__()
        self.config = config
        self.word_embedding = nn.Embedding(num_words, config.word_dim, padding_idx=0)
        # Uniform in +-sqrt(3/dim) gives unit variance per component, as in Lample et al.
        bound = (3.0 / config.word_dim) ** 0.5
        nn.init.uniform_(self.word_embedding.weight, -bound, bound)
        with torch.no_grad():
            self.word_embedding.weight[0].zero_()
        self.char_encoder = char_encoder(config, num_chars)
        # Linear, per distinct word: the BiLSTM sees a mix of many filters' features.
        self.char_projection = (nn.Linear(2 * config.char_hidden, config.char_projection)
                                if config.char_projection else None)
        self.lstm = nn.LSTM(config.word_dim + char_features(config), config.hidden,
                            num_layers=config.layers, batch_first=True, bidirectional=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        # With document context, each token also sees the mean state of its word's
        # occurrences in the document: one clear mention informs the unclear ones; with
        # the summary, also the mean state of the whole document.
        self.to_tags = nn.Linear(2 * pooled_blocks(config) * config.hidden, num_tags)
        self.crf = ConditionalRandomField(num_tags)
        # The word BiLSTM's arithmetic outside training (see nerlstm.tagging.use_precision).
        self.lstm_dtype = torch.float32

    def emissions(self, batch: Batch) -> torch.Tensor:
        """Tag scores per token, shape (batch, length, tags)."""
        if self.config.doc_context:
            return self.pool_tag_scores(self.state_products(batch, self.pooling_weight()),
                                        batch.group_ids, batch.context_group_ids)
        return self.state_products(batch, self.to_tags.weight) + self.to_tags.bias

    def pooling_weight(self) -> torch.Tensor:
        """Shape (blocks * tags, 2 * hidden): the output layer's weights for a token's own
        states stacked on those for the mean states of its group (:func:`pooled_by_group`)
        and, with the document summary, on those for the mean state of its context.

        Pooling comes after the product: the mean of the products is the product of the
        mean, and there are far fewer tags than state features.
        """
        return torch.cat(self.to_tags.weight.split(2 * self.config.hidden, dim=1))

    def pool_tag_scores(self, products: torch.Tensor, group_ids: torch.Tensor,
                        context_group_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Tag scores from the products with :meth:`pooling_weight` of the tokens of whole
        groups (and, with the document summary, of whole contexts: ``context_group_ids``
        numbers each token's context)."""
        own, shared, *summary = products.split(self.to_tags.out_features, dim=-1)
        scores = own + pooled_by_group(shared, group_ids) + self.to_tags.bias
        if summary:
            scores = scores + pooled_by_group(summary[0], context_group_ids)
        return scores

    def state_products(self, batch: Batch, weight: torch.Tensor) -> torch.Tensor:
        """``linear(self.encode(batch), weight)``, shape (batch, length, outputs); outside
        training by :func:`lstm_products`, with 0 at padding."""
        if self.training:
            return nn.functional.linear(self.encode(batch), weight)
        return lstm_products(self.lstm, self.lstm_inputs(batch), batch.lengths, batch.mask,
                             weight, self.lstm_dtype)

    def lstm_inputs(self, batch: Batch) -> torch.Tensor:
        """Each token's word embedding joined with its characters' features, dropout applied."""
        # The character encoder runs once per distinct word of the batch.
        per_word = self.char_encoder(batch.char_ids, batch.char_lengths)
        if self.char_projection is not None:
            per_word = self.char_projection(per_word)
        chars = rows_of(per_word, batch.word_to_distinct)
        words = self.word_embedding(batch.word_ids)
        inputs = torch.cat([words, chars], dim=2)
        if self.config.locked_dropout:
            return locked_dropout(inputs, self.config.dropout, self.training)
        return dropout(inputs, self.config.dropout, self.training)

    def encode(self, batch: Batch) -> torch.Tensor:
        """The word BiLSTM's states, shape (batch, length, 2 * hidden); no document pooling."""
        inputs = self.lstm_inputs(batch)
        dtype = torch.float32 if self.training else self.lstm_dtype
        with reduced_precision(inputs.device.type, dtype):
            encoded = bidirectional_lstm(self.lstm, inputs, batch.lengths, batch.mask).float()
        if self.config.locked_dropout:
            return locked_dropout(encoded, self.config.dropout, self.training)
        return dropout(encoded, self.config.dropout, self.training)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Negative log-likelihood of the gold tags, summed over the batch."""
        return self.crf(self.emissions(batch), batch.tag_ids, batch.mask)

    def loss_and_states(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """In training: :meth:`loss`, computed to the same numbers, and the word BiLSTM's
        states it came from (for an objective beside it)."""
        states = self.encode(batch)
        if self.config.doc_context:
            emissions = self.pool_tag_scores(
                nn.functional.linear(states, self.pooling_weight()), batch.group_ids,
                batch.context_group_ids)
        else:
            emissions = nn.functional.linear(states, self.to_tags.weight) + self.to_tags.bias
        return self.crf(emissions, batch.tag_ids, batch.mask), states
