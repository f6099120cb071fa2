"""The character+word BiLSTM encoder with a CRF decoder."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torchcrf import CRF

from nerlstm.batching import Batch
from nerlstm.config import Config
from nerlstm.crf import CrfScores, viterbi


class CharEncoder(nn.Module):
    """A BiLSTM over a word's characters; its two final states, joined, stand for the word."""

    def __init__(self, num_chars: int, char_dim: int, hidden: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.lstm = nn.LSTM(char_dim, hidden, batch_first=True, bidirectional=True)

    def forward(self, char_ids: torch.Tensor, char_lengths: torch.Tensor) -> torch.Tensor:
        """char_ids: (words, chars); char_lengths: (words,) on the CPU. Returns (words, 2*hidden)."""
        packed = pack_padded_sequence(self.embedding(char_ids), char_lengths, batch_first=True,
                                      enforce_sorted=False)
        _, (final, _) = self.lstm(packed)
        # final shape: (2, words, hidden), forward then backward direction
        return torch.cat([final[0], final[1]], dim=1)


class CharCnn(nn.Module):
    """Convolution over a word's characters, max-pooled over its length (Ma & Hovy 2016)."""

    def __init__(self, num_chars: int, char_dim: int, filters: int, width: int = 3,
                 bounded: bool = True) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, filters, width, padding=width // 2)
        self.bounded = bounded

    # In inference, words are encoded in groups of about equal length, this many at a time.
    GROUP = 512

    def forward(self, char_ids: torch.Tensor, char_lengths: torch.Tensor) -> torch.Tensor:
        """char_ids: (words, chars); char_lengths: (words,). Returns (words, filters)."""
        if self.training or char_ids.shape[0] <= self.GROUP:
            return self._features(char_ids)
        # A tagging batch holds thousands of words, padded to its longest: run the
        # convolution over groups of similar length instead (under half the positions
        # on CoNLL-2003 test). Each word's features do not depend on its group.
        order = char_lengths.to(char_ids.device).argsort()
        features = self.conv.weight.new_empty(char_ids.shape[0], self.conv.out_channels)
        for start in range(0, len(order), self.GROUP):
            rows = order[start:start + self.GROUP]
            longest = int(char_lengths[rows.cpu()].max())
            features[rows] = self._features(char_ids[rows, :longest])
        return features

    def _features(self, char_ids: torch.Tensor) -> torch.Tensor:
        convolved = self.conv(self.embedding(char_ids).transpose(1, 2))
        # Positions past a word's end must not win the max: a short word in a batch of long
        # ones would otherwise see padding.
        padding = (char_ids == 0).unsqueeze(1)
        pooled = convolved.masked_fill(padding, float("-inf")).max(dim=2).values
        # Unbounded, the pooled features grew to ten times the word embeddings' size and the
        # word BiLSTM leaned on them alone; tanh keeps them in the BiLSTM encoder's range.
        # tanh is monotonic, so applying it after the max equals applying it before.
        return torch.tanh(pooled) if self.bounded else pooled


def locked_dropout(inputs: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Dropout with one mask per sequence, shared by all its time steps (variational dropout,
    Gal & Ghahramani 2016). inputs: (batch, length, features)."""
    if not training or rate == 0.0:
        return inputs
    keep = inputs.new_empty(inputs.shape[0], 1, inputs.shape[2]).bernoulli_(1.0 - rate)
    return inputs * keep / (1.0 - rate)


def pooled_by_group(states: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """For each token, the mean of ``states`` over the tokens sharing its group id."""
    flat_ids = group_ids.reshape(-1)
    flat = states.reshape(flat_ids.shape[0], -1)
    groups = int(flat_ids.max()) + 1
    sums = flat.new_zeros(groups, flat.shape[1]).index_add(0, flat_ids, flat)
    counts = torch.bincount(flat_ids, minlength=groups).clamp(min=1).unsqueeze(1)
    return (sums / counts)[flat_ids].view_as(states)


def char_encoder(config: Config, num_chars: int) -> nn.Module:
    if config.char_encoder == "lstm":
        return CharEncoder(num_chars, config.char_dim, config.char_hidden)
    if config.char_encoder == "cnn":
        return CharCnn(num_chars, config.char_dim, 2 * config.char_hidden,
                       bounded=config.char_cnn_tanh)
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
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(config.word_dim + 2 * config.char_hidden, config.hidden,
                            num_layers=config.layers, batch_first=True, bidirectional=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        # With document context, each token also sees the mean state of its word's
        # occurrences in the document: one clear mention informs the unclear ones.
        self.to_tags = nn.Linear((4 if config.doc_context else 2) * config.hidden, num_tags)
        self.crf = CRF(num_tags, batch_first=True)

    def emissions(self, batch: Batch) -> torch.Tensor:
        """Tag scores per token, shape (batch, length, tags)."""
        encoded = self.encode(batch)
        if self.config.doc_context:
            encoded = torch.cat([encoded, pooled_by_group(encoded, batch.group_ids)], dim=2)
        return self.to_tags(encoded)

    def encode(self, batch: Batch) -> torch.Tensor:
        """The word BiLSTM's states, shape (batch, length, 2 * hidden); no document pooling."""
        # The character encoder runs once per distinct word of the batch.
        per_word = self.char_encoder(batch.char_ids, batch.char_lengths)
        chars = per_word[batch.word_to_distinct]
        words = self.word_embedding(batch.word_ids)
        inputs = torch.cat([words, chars], dim=2)
        locked = self.config.locked_dropout
        if locked:
            inputs = locked_dropout(inputs, self.config.dropout, self.training)
        packed = pack_padded_sequence(inputs, batch.lengths, batch_first=True,
                                      enforce_sorted=False)
        if not locked:
            # On the packed tokens only: padding can be most of a batch of documents.
            packed = packed._replace(data=self.dropout(packed.data))
        encoded, _ = self.lstm(packed)
        if not locked:
            encoded = encoded._replace(data=self.dropout(encoded.data))
        encoded, _ = pad_packed_sequence(encoded, batch_first=True,
                                         total_length=batch.word_ids.shape[1])
        if locked:
            encoded = locked_dropout(encoded, self.config.dropout, self.training)
        return encoded

    def loss(self, batch: Batch) -> torch.Tensor:
        """Negative log-likelihood of the gold tags, summed over the batch."""
        return -self.crf(self.emissions(batch), batch.tag_ids, batch.mask, reduction="sum")

    def decode(self, batch: Batch, scores: CrfScores) -> torch.Tensor:
        """Best tag ids per token, shape (batch, length)."""
        return viterbi(self.emissions(batch), batch.mask, scores)
