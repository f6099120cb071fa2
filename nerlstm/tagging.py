"""Predicting tags with a trained model, and writing tagged text."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from torch.nn.utils.rnn import pad_sequence

from nerlstm import schemes
from nerlstm.batching import (
    Encoder,
    batch_indices,
    context_batches,
    length_mask,
)
from nerlstm.crf import CrfScores, forward_backward, segment_log_probability, viterbi
from nerlstm.errors import NerlstmError
from nerlstm.model import BiLstmCrf
from nerlstm.records import DOCUMENT_CHUNK_BATCHES, Entity, Tagged
from nerlstm.torch_compat import cpu_has_bfloat16


class Tagger:
    """A model with its vocabularies, predicting IOB2 tags for token lists.

    Args:
        model: the network.
        encoder: its vocabularies.
        train_scheme: the scheme the model's tags are in; decoding keeps to it.
        device: where the model runs.
        workers: threads that tag parts of a long input at once (see :meth:`tag`).
    """

    def __init__(self, model: BiLstmCrf, encoder: Encoder, train_scheme: str,
                 device: torch.device | str = "cpu", workers: int = 1) -> None:
        self.model = model
        self.encoder = encoder
        self.train_scheme = train_scheme
        self.device = torch.device(device)
        self.workers = workers
        self.allowed = schemes.allowed_transitions(encoder.tags.symbols, train_scheme)
        model.crf.constrain(*self.allowed)

    def predict(self, token_lists: Sequence[Sequence[str]], batch_size: int = 256, *,
                contexts: Sequence[int] | None = None) -> list[list[str]]:
        """IOB2 tags for each token list (empty lists give empty results), in input order."""
        return [tagged.tags for tagged in self.tag(token_lists, batch_size, contexts=contexts)]

    def tag(self, token_lists: Sequence[Sequence[str]], batch_size: int = 256, *,
            scores: bool = False, contexts: Sequence[int] | None = None) -> list[Tagged]:
        """Tags and entities of each token list, in input order.

        ``contexts`` (see :func:`nerlstm.batching.context_ids`) says which token lists
        form a document; a model trained with document context reads them together.
        Without it, each token list is read alone.

        With ``scores``, each entity carries its marginal probability under the CRF: the
        share of all well-formed tag paths, weighted by probability, that label exactly
        that span with that type.

        With several ``workers``, an input of many sentences is cut into that many parts
        (between documents) tagged in threads at once. On a CPU, with torch's own threads
        set to one, that is faster than torch's threads alone: each step of an LSTM is too
        small a product to share among cores, while whole parts share them without waiting.
        """
        results = [Tagged([], []) for _ in token_lists]
        nonempty = [index for index, tokens in enumerate(token_lists) if tokens]
        if not self.encoder.doc_context:
            contexts = None  # a model without document context reads each sentence alone
        parts = self._parts(token_lists, nonempty, contexts)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                crf_scores = self.model.crf.scores()

            def tag_part(part: list[int]) -> None:
                self._tag_part(token_lists, part, contexts, batch_size, scores, crf_scores,
                               results)

            if len(parts) == 1:
                tag_part(parts[0])
            else:
                with ThreadPoolExecutor(len(parts)) as pool:
                    list(pool.map(tag_part, parts))  # list() raises a worker's error here
        finally:
            self.model.train(was_training)
        return results

    # A part smaller than this is not worth a thread of its own.
    MIN_PART_SENTENCES = 64

    def _parts(self, token_lists: Sequence[Sequence[str]], nonempty: list[int],
               contexts: Sequence[int] | None) -> list[list[int]]:
        """``nonempty`` cut into up to ``workers`` runs of about equal numbers of tokens,
        never inside a context. Tokens, not sentences: the last worker to finish sets the
        time, and sentences differ so much in length that equal counts of them can be far
        from equal work."""
        count = min(self.workers, len(nonempty) // self.MIN_PART_SENTENCES)
        if count <= 1:
            return [nonempty]
        total = sum(len(token_lists[index]) for index in nonempty)
        parts: list[list[int]] = [[]]
        done = 0
        for position, index in enumerate(nonempty):
            boundary = (contexts is None or position == 0
                        or contexts[index] != contexts[nonempty[position - 1]])
            if boundary and len(parts) < count and done >= len(parts) * total / count:
                parts.append([])
            parts[-1].append(index)
            done += len(token_lists[index])
        return parts

    def _tag_part(self, token_lists: Sequence[Sequence[str]], part: list[int],
                  contexts: Sequence[int] | None, batch_size: int, scores: bool,
                  crf_scores: CrfScores, results: list[Tagged]) -> None:
        """Tags the sentences at ``part`` into ``results``."""
        symbols = self.encoder.tags.symbols
        with torch.inference_mode():  # per thread
            if contexts is not None:
                batches = self._document_emissions(token_lists, part, contexts, batch_size)
            else:
                batches = self._sentence_emissions(token_lists, part, batch_size)
            for indices, emissions, mask in batches:
                paths = viterbi(emissions, mask, crf_scores).tolist()
                marginals = forward_backward(emissions, mask, crf_scores) if scores else None
                for row, (index, path) in enumerate(zip(indices, paths)):
                    length = len(token_lists[index])
                    own = [symbols[tag] for tag in path[:length]]
                    found = schemes.spans(own)
                    entities = [Entity(*span) for span in found]
                    if marginals is not None:
                        alpha, beta, log_z = (values[row] for values in marginals)
                        for entity in entities:
                            entity.score = self._span_probability(
                                emissions[row], alpha, beta, log_z, crf_scores, entity, length)
                    results[index] = Tagged(
                        schemes.tags_from_spans(found, length, "iob2"), entities)

    def _sentence_emissions(self, token_lists: Sequence[Sequence[str]], nonempty: list[int],
                            batch_size: int) -> Iterator[tuple[list[int], torch.Tensor,
                                                               torch.Tensor]]:
        """(indices, emissions, mask) for batches of sentences of similar length, each
        sentence read alone."""
        for group in batch_indices([len(token_lists[i]) for i in nonempty], batch_size):
            indices = [nonempty[i] for i in group]
            batch = self.encoder.batch(token_lists, indices).to(self.device)
            yield indices, self.model.emissions(batch), batch.mask

    def _document_emissions(self, token_lists: Sequence[Sequence[str]], nonempty: list[int],
                            contexts: Sequence[int], batch_size: int
                            ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """As :meth:`_sentence_emissions`, with each word's mean state over its context.

        The same numbers as batches of whole contexts (what training uses), but faster:
        the BiLSTM runs over sentences of similar length, and the pooling afterwards over
        a chunk of whole contexts at a time (which bounds the memory).
        """
        for group in context_batches([contexts[index] for index in nonempty],
                                     DOCUMENT_CHUNK_BATCHES * batch_size):
            chunk = [nonempty[position] for position in group]
            yield from self._chunk_emissions(token_lists, chunk, contexts, batch_size)

    def _chunk_emissions(self, token_lists: Sequence[Sequence[str]], chunk: list[int],
                         contexts: Sequence[int], batch_size: int
                         ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        lengths = [len(token_lists[i]) for i in chunk]
        to_pool: dict[int, torch.Tensor] = {}
        weight = self.model.pooling_weight()
        for group in batch_indices(lengths, batch_size):
            indices = [chunk[i] for i in group]
            batch = self.encoder.batch(token_lists, indices, with_groups=False).to(self.device)
            # Only the output layer's products go on to the pooling: two scores per tag and
            # token, not the BiLSTM's states.
            products = self.model.state_products(batch, weight)
            for row, index in enumerate(indices):
                to_pool[index] = products[row, :len(token_lists[index])]
        flat = torch.cat([to_pool[index] for index in chunk])
        group_of: dict[tuple[int, str], int] = {}
        group_ids = torch.tensor([group_of.setdefault((contexts[index], token.lower()),
                                                      len(group_of))
                                  for index in chunk for token in token_lists[index]],
                                 device=flat.device)
        context_group_ids = None
        if self.model.config.doc_summary:
            context_group_ids = torch.tensor([contexts[index] for index in chunk
                                              for _ in token_lists[index]], device=flat.device)
            context_group_ids = context_group_ids.unique(return_inverse=True)[1]
        scores = self.model.pool_tag_scores(flat, group_ids, context_group_ids)
        per_sentence = dict(zip(chunk, scores.split(lengths)))
        for group in batch_indices(lengths, batch_size):
            indices = [chunk[i] for i in group]
            emissions = pad_sequence([per_sentence[i] for i in indices], batch_first=True)
            batch_lengths = torch.tensor([len(token_lists[i]) for i in indices],
                                         device=flat.device)
            mask = length_mask(batch_lengths)
            yield indices, emissions, mask

    def _span_probability(self, emissions, alpha, beta, log_z, crf_scores, entity: Entity,
                          length: int) -> float:
        """P(exactly this span with this type), from forward-backward scores."""
        index = self.encoder.tags.index
        span = schemes.Span(entity.type, entity.start, entity.end)
        own = schemes.tags_from_spans([span], entity.end, self.train_scheme)[entity.start:]
        ids = [index[tag] for tag in own]
        probability = math.exp(segment_log_probability(
            emissions, alpha, beta, log_z, crf_scores, entity.start, ids))
        inside = f"I-{entity.type}"
        if self.train_scheme != "bioes" and entity.end < length and inside in index:
            # Without an end tag, the same tags followed by I-TYPE make a longer entity.
            longer = math.exp(segment_log_probability(
                emissions, alpha, beta, log_z, crf_scores, entity.start, ids + [index[inside]]))
            probability -= longer
        return min(max(probability, 0.0), 1.0)


def tag_on_cpu_threads(tagger: Tagger, threads: int) -> None:
    """Spread ``tagger``'s work over ``threads`` worker threads, torch running on one thread
    in each (see :meth:`Tagger.tag`). Sets torch's thread count for the whole process."""
    tagger.workers = max(1, threads)
    torch.set_num_threads(1)


PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def has_bfloat16(device: torch.device | str) -> bool:
    """Whether ``device`` computes in bfloat16 natively (a CPU with AVX512-BF16 or AMX)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bfloat16()


def use_precision(tagger: Tagger, precision: str) -> None:
    """Run ``tagger``'s word BiLSTM in ``precision``: float32, or bfloat16, which is faster on
    a CPU with bfloat16 instructions (half the bytes to move, and the products in hardware)
    and changes a rare tag, where the best path wins by a hair. Raises NerlstmError where
    the device lacks them: emulated, bfloat16 is slower."""
    if precision == "bfloat16" and not has_bfloat16(tagger.device):
        what = ("this GPU does not support bfloat16" if tagger.device.type == "cuda" else
                "this CPU has no bfloat16 instructions (AVX512-BF16 or AMX), where it is "
                "slower than float32")
        raise NerlstmError(f"--precision bfloat16: {what}", exit_code=2)
    tagger.model.lstm_dtype = PRECISIONS[precision]
