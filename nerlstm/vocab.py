"""Vocabularies of words, characters and tags, and the word lookup rule."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

PAD, UNK = "<pad>", "<unk>"
_DIGIT = re.compile(r"\d")


def normalise_digits(word: str) -> str:
    return _DIGIT.sub("0", word)


def word_keys(word: str) -> tuple[str, ...]:
    """The forms tried, in order, to find a word: exact, lowercased, digits to 0."""
    lower = word.lower()
    return (word, lower, normalise_digits(word), normalise_digits(lower))


class Vocab:
    """A list of symbols with ids; ids 0 and 1 are padding and unknown.

    Args:
        symbols: symbols after the two reserved ones, in id order.
    """

    def __init__(self, symbols: Iterable[str] = ()) -> None:
        self.symbols: list[str] = [PAD, UNK]
        self.index: dict[str, int] = {PAD: 0, UNK: 1}
        for symbol in symbols:
            self.add(symbol)

    def add(self, symbol: str) -> int:
        if symbol not in self.index:
            self.index[symbol] = len(self.symbols)
            self.symbols.append(symbol)
        return self.index[symbol]

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.index

    def get(self, symbol: str) -> int:
        return self.index.get(symbol, 1)

    def word_id(self, word: str) -> int:
        """Id of the first form of ``word`` (see :func:`word_keys`) in the vocabulary, else UNK."""
        index = self.index
        for key in word_keys(word):
            found = index.get(key)
            if found is not None:
                return found
        return 1

    @classmethod
    def from_counts(cls, counts: Counter) -> Vocab:
        # Most frequent first, ties by symbol, so that ids do not depend on dict order.
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(symbol for symbol, _ in ordered)


class TagVocab:
    """Tags with ids from 0 (no padding or unknown: the CRF sees only real tags)."""

    def __init__(self, tags: Sequence[str]) -> None:
        self.symbols = list(tags)
        self.index = {tag: number for number, tag in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, tag: str) -> bool:
        return tag in self.index


def build_vocabs(token_lists: Iterable[Sequence[str]], *, lowercase_words: bool = False
                 ) -> tuple[Vocab, Vocab, Counter]:
    """Word and character vocabularies of the training tokens, and the word counts.

    With ``lowercase_words`` the word table holds lowercased forms only (case then comes from
    the character encoder), so that "Paris" and "PARIS" share one vector.
    """
    word_counts: Counter = Counter()
    char_counts: Counter = Counter()
    for tokens in token_lists:
        for token in tokens:
            word_counts[normalise_digits(token.lower() if lowercase_words else token)] += 1
            char_counts.update(token)
    return Vocab.from_counts(word_counts), Vocab.from_counts(char_counts), word_counts
