"""A language-modelling objective beside the tagging loss, for training only.

The word BiLSTM's forward state at each token learns to predict the next word, its backward
state the previous one (Rei 2017, "Semi-supervised multitask learning for sequence
labeling"). Each direction sees only the words on its own side, so the prediction is a real
task; it pushes the states to carry what the context says about a word, which helps most on
words the tagging data shows rarely. The head is dropped after training: tagging never runs
it and model files do not hold it.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from nerlstm.vocab import Vocab

# Rei 2017: the most frequent words of the training data are predicted, each other word as
# one shared class; states go through a small tanh layer before the softmax.
PREDICTED_WORDS = 7500
BOTTLENECK = 50
# Classes besides the predicted words: a word outside them, and the sentence boundary (the
# next word after the last token, the previous word before the first).
OTHER, BOUNDARY = 0, 1


def word_classes(words: Vocab, counts: Counter, predicted: int = PREDICTED_WORDS
                 ) -> torch.Tensor:
    """For each word id, the class the objective predicts for it: BOUNDARY for padding,
    a class of its own for the ``predicted`` most frequent words, OTHER for the rest (and for
    UNK)."""
    classes = torch.full((len(words),), OTHER, dtype=torch.long)
    classes[0] = BOUNDARY  # padding follows a sentence's last token
    frequent = sorted((word for word in counts if word in words),
                      key=lambda word: (-counts[word], word))[:predicted]
    for number, word in enumerate(frequent):
        classes[words.get(word)] = 2 + number
    return classes


class NeighbourWordObjective(nn.Module):
    """Predicts each token's next word from the forward states and its previous word from
    the backward states; returns the summed negative log-likelihood."""

    def __init__(self, hidden: int, classes_of_words: torch.Tensor) -> None:
        super().__init__()
        # Persistent, so that a resumed run predicts the same classes.
        self.register_buffer("classes_of_words", classes_of_words.clone())
        classes = int(classes_of_words.max()) + 1
        self.hidden = hidden
        self.forward_bottleneck = nn.Linear(hidden, BOTTLENECK)
        self.backward_bottleneck = nn.Linear(hidden, BOTTLENECK)
        self.forward_output = nn.Linear(BOTTLENECK, classes)
        self.backward_output = nn.Linear(BOTTLENECK, classes)

    def targets(self, word_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The next and previous words' classes at each position, shape (batch, length)."""
        classes = self.classes_of_words[word_ids]  # padding is BOUNDARY
        following = torch.full_like(classes, BOUNDARY)
        following[:, :-1] = classes[:, 1:]
        preceding = torch.full_like(classes, BOUNDARY)
        preceding[:, 1:] = classes[:, :-1]
        return following, preceding

    def forward(self, states: torch.Tensor, word_ids: torch.Tensor, mask: torch.Tensor
                ) -> torch.Tensor:
        """states: (batch, length, 2 * hidden), forward then backward halves; word_ids: the
        words as read (before any were replaced by UNK); mask: True on real tokens."""
        following, preceding = self.targets(word_ids)
        real = mask.reshape(-1)
        forward_states = states[..., :self.hidden].reshape(-1, self.hidden)[real]
        backward_states = states[..., self.hidden:].reshape(-1, self.hidden)[real]
        loss = nn.functional.cross_entropy(
            self.forward_output(torch.tanh(self.forward_bottleneck(forward_states))),
            following.reshape(-1)[real], reduction="sum")
        return loss + nn.functional.cross_entropy(
            self.backward_output(torch.tanh(self.backward_bottleneck(backward_states))),
            preceding.reshape(-1)[real], reduction="sum")
