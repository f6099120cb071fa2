"""Predicting tags with a trained model, and writing tagged text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch

from nerlstm import schemes
from nerlstm.batching import Encoder, batch_indices
from nerlstm.crf import constrained_scores
from nerlstm.model import BiLstmCrf


class Tagger:
    """A model with its vocabularies, predicting IOB2 tags for token lists.

    Args:
        model: the network.
        encoder: its vocabularies.
        train_scheme: the scheme the model's tags are in; decoding keeps to it.
        device: where the model runs.
    """

    def __init__(self, model: BiLstmCrf, encoder: Encoder, train_scheme: str,
                 device: torch.device | str = "cpu") -> None:
        self.model = model
        self.encoder = encoder
        self.train_scheme = train_scheme
        self.device = torch.device(device)
        self.allowed = schemes.allowed_transitions(encoder.tags.symbols, train_scheme)

    def predict(self, token_lists: Sequence[Sequence[str]], batch_size: int = 256
                ) -> list[list[str]]:
        """IOB2 tags for each token list (empty lists give empty results), in input order."""
        results: list[list[str]] = [[] for _ in token_lists]
        lengths = [len(tokens) for tokens in token_lists]
        nonempty = [index for index, length in enumerate(lengths) if length]
        was_training = self.model.training
        self.model.eval()
        symbols = self.encoder.tags.symbols
        try:
            with torch.inference_mode():
                scores = constrained_scores(self.model.crf, *self.allowed)
                for group in batch_indices([lengths[i] for i in nonempty], batch_size):
                    indices = [nonempty[i] for i in group]
                    batch = self.encoder.batch(token_lists, indices).to(self.device)
                    paths = self.model.decode(batch, scores).tolist()
                    for index, path in zip(indices, paths):
                        tags = [symbols[tag] for tag in path[:lengths[index]]]
                        results[index] = schemes.convert(tags, "iob2")
        finally:
            self.model.train(was_training)
        return results


def inline(tokens: Sequence[str], tags: Sequence[str]) -> str:
    """Tokens joined by spaces, entities in brackets: ``[PER Peter Blackburn] visited``."""
    pieces = list(tokens)
    for kind, start, end in reversed(schemes.spans(tags)):
        pieces[start:end] = [f"[{kind} {' '.join(tokens[start:end])}]"]
    return " ".join(pieces)


def tag_lines(tagger: Tagger, lines: Iterable[str], batch_size: int = 256) -> Iterator[str]:
    """Tag whitespace-tokenised lines, one output line per input line, in order."""
    pending: list[list[str]] = []

    def flush() -> Iterator[str]:
        for tokens, tags in zip(pending, tagger.predict(pending, batch_size)):
            yield inline(tokens, tags)
        pending.clear()

    for line in lines:
        pending.append(line.split())
        if len(pending) >= batch_size:
            yield from flush()
    yield from flush()
