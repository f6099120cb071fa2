"""Turning sentences into padded tensors, sentences of similar length batched together.

The grouping (contexts, batches of similar length) and the vocabulary lookups need no
torch, and import none: the ONNX tagger uses them too. Only building tensors loads torch.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

from nerlstm.vocab import TagVocab, Vocab

if TYPE_CHECKING:
    import torch


@dataclass
class Batch:
    """Tensors for a batch of sentences.

    Attributes:
        indices: position of each sentence in the list it came from.
        word_ids: (batch, length), 0 past each sentence's end.
        mask: (batch, length), True on real tokens.
        lengths: (batch,), on the CPU, as packing wants.
        char_ids: (distinct words, longest word) characters of each distinct word.
        char_lengths: (distinct words,), on the CPU.
        word_to_distinct: (batch, length), row of ``char_ids`` for each token.
        tag_ids: (batch, length) gold tag ids, or None.
        group_ids: (batch, length), with document context: tokens of one context with the
            same lowercased form share an id (from 1; 0 past each sentence's end).
        context_group_ids: (batch, length), with document context: each token's context,
            numbered from 1 in the batch (0 past each sentence's end).
        words_as_read: in training, ``word_ids`` before some words were replaced by UNK.
    """

    indices: list[int]
    word_ids: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    char_ids: torch.Tensor
    char_lengths: torch.Tensor
    word_to_distinct: torch.Tensor
    tag_ids: torch.Tensor | None = None
    group_ids: torch.Tensor | None = None
    context_group_ids: torch.Tensor | None = None
    words_as_read: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        import torch

        if torch.device(device).type == "cpu":
            return self
        moved = {name: value.to(device) for name, value in vars(self).items()
                 if isinstance(value, torch.Tensor) and name not in ("lengths", "char_lengths")}
        return Batch(**{**vars(self), **moved})


# A document longer than this is read as pieces of at most this many sentences: enough
# context for the repeated names that matter, and a bound on the size of a batch.
MAX_CONTEXT_SENTENCES = 32


def context_numbering() -> Callable[[int], int]:
    """A counter giving each sentence, fed in file order, its context id from its document.

    A context is a document, or a piece of a long one: a document is cut into consecutive
    pieces of MAX_CONTEXT_SENTENCES sentences, the last one shorter, so that a stream is
    cut as a whole file is, without knowing where the document ends.
    """
    context, position, previous = -1, 0, None

    def context_of(document: int) -> int:
        nonlocal context, position, previous
        position = position + 1 if document == previous else 0
        previous = document
        if position % MAX_CONTEXT_SENTENCES == 0:
            context += 1
        return context

    return context_of


def context_ids(documents: Sequence[int]) -> list[int]:
    """Each sentence's context id (see :func:`context_numbering`), from each sentence's
    document index, sentences in file order; a file without ``-DOCSTART-`` lines is one
    document."""
    context_of = context_numbering()
    return [context_of(document) for document in documents]


def context_batches(contexts: Sequence[int], batch_size: int,
                    rng: random.Random | None = None) -> Iterator[list[int]]:
    """Groups of sentence indices made of whole contexts, each of at least ``batch_size``
    sentences but the last. With ``rng`` (training), the contexts come in random order."""
    members: dict[int, list[int]] = {}
    for index, context in enumerate(contexts):
        members.setdefault(context, []).append(index)
    groups = list(members.values())
    if rng is not None:
        rng.shuffle(groups)
    batch: list[int] = []
    for group in groups:
        batch.extend(group)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


# The character encoder reads at most this many characters of a word, its start and its end:
# enough for any real word, and a 100,000-character token cannot stall training or tagging.
MAX_WORD_CHARS = 64


def clipped(token: str) -> str:
    if len(token) <= MAX_WORD_CHARS:
        return token
    half = MAX_WORD_CHARS // 2
    return token[:half] + token[-half:]


class Encoder:
    """Maps tokens and tags to ids with the model's vocabularies."""

    def __init__(self, words: Vocab, chars: Vocab, tags: TagVocab,
                 doc_context: bool = False) -> None:
        self.words = words
        self.chars = chars
        self.tags = tags
        self.doc_context = doc_context
        self._char_cache: dict[str, list[int]] = {}
        self._word_cache: dict[str, int] = {}

    def trim_caches(self, limit: int = 200_000) -> None:
        """Forget cached lookups past ``limit`` words, so that memory stays flat on endless input."""
        if len(self._word_cache) > limit or len(self._char_cache) > limit:
            self._word_cache.clear()
            self._char_cache.clear()

    def word_id(self, token: str) -> int:
        found = self._word_cache.get(token)
        if found is None:
            found = self._word_cache[token] = self.words.word_id(token)
        return found

    def char_ids(self, token: str) -> list[int]:
        found = self._char_cache.get(token)
        if found is None:
            found = self._char_cache[token] = [self.chars.get(char) for char in clipped(token)]
        return found

    def batch(self, sentences: Sequence[Sequence[str]], indices: list[int],
              tags: Sequence[Sequence[str]] | None = None,
              contexts: Sequence[int] | None = None, *, with_groups: bool = True) -> Batch:
        """Tensors for the sentences at ``indices`` of ``sentences`` (and their tags).

        ``contexts`` gives each sentence's context id (see :func:`context_ids`); without
        it, each sentence is its own context. ``with_groups=False`` skips the group ids
        (for a caller that pools by itself).
        """
        import torch

        chosen = [sentences[index] for index in indices]
        lengths = [len(tokens) for tokens in chosen]
        length_tensor = torch.tensor(lengths)
        mask = length_mask(length_tensor)

        flat_tokens = [token for tokens in chosen for token in tokens]
        word_id = self.word_id
        word_ids = filled(mask, [word_id(token) for token in flat_tokens])
        distinct: dict[str, int] = {}
        word_to_distinct = filled(mask, [distinct.setdefault(token, len(distinct))
                                         for token in flat_tokens])
        char_lists = [self.char_ids(token) for token in distinct]
        char_lengths = torch.tensor([len(chars) for chars in char_lists])
        char_ids = padded_rows(char_lists, char_lengths)
        tag_ids = None
        if tags is not None:
            tag_index = self.tags.index
            tag_ids = filled(mask, [tag_index[tag] for index in indices for tag in tags[index]])
        group_ids = context_group_ids = None
        if self.doc_context and with_groups:
            row_contexts = [contexts[index] if contexts is not None else -1 - row
                            for row, index in enumerate(indices)]
            groups: dict[tuple[int, str], int] = {}
            group_ids = filled(mask, [
                groups.setdefault((context, token.lower()), len(groups) + 1)
                for context, tokens in zip(row_contexts, chosen) for token in tokens])
            numbered: dict[int, int] = {}
            context_group_ids = filled(mask, [
                numbered.setdefault(context, len(numbered) + 1)
                for context, tokens in zip(row_contexts, chosen) for _ in tokens])
        return Batch(indices, word_ids, mask, length_tensor, char_ids,
                     char_lengths, word_to_distinct, tag_ids, group_ids, context_group_ids)


def padded_rows(rows: Sequence[list[int]], lengths: torch.Tensor) -> torch.Tensor:
    """``rows`` as one (rows, longest) tensor, 0 past each row's end.

    One scatter of the flat values, faster than padding each list in Python.
    """
    return filled(length_mask(lengths), list(chain.from_iterable(rows)))


def length_mask(lengths: torch.Tensor) -> torch.Tensor:
    """Shape (rows, longest): True where a position lies within its row's length."""
    import torch

    positions = torch.arange(int(lengths.max()), device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def filled(mask: torch.Tensor, flat: list[int]) -> torch.Tensor:
    """A zero tensor of ``mask``'s shape whose True cells, row by row, hold ``flat``."""
    import torch

    tensor = torch.zeros(mask.shape, dtype=torch.long)
    tensor[mask] = torch.tensor(flat, dtype=torch.long)
    return tensor


def batch_indices(lengths: Sequence[int], batch_size: int,
                  rng: random.Random | None = None) -> Iterator[list[int]]:
    """Groups of sentence indices, sentences of similar length together.

    With ``rng`` (training), sentences of equal length are shuffled before grouping and the
    groups come in random order; without it, the order is fixed.
    """
    order = list(range(len(lengths)))
    if rng is not None:
        rng.shuffle(order)
    order.sort(key=lambda index: lengths[index])  # stable: ties keep the shuffled order
    groups = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(groups)
    yield from groups
