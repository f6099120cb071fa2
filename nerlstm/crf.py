"""CRF algorithms over the parameters of a ``torchcrf.CRF``, batched over sentences.

torchcrf decodes one sentence at a time in Python and cannot forbid transitions; these
functions run the same model as tensor operations over a whole batch, with the tag scheme's
forbidden transitions masked out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torchcrf import CRF

FORBIDDEN = -1e4  # large enough to never win, small enough to keep exp() and sums finite


class CrfScores(NamedTuple):
    """Transition scores, forbidden ones set to ``FORBIDDEN``."""

    start: torch.Tensor        # shape: (tags,)
    end: torch.Tensor          # shape: (tags,)
    transitions: torch.Tensor  # shape: (tags, tags), [from, to]


def constrained_scores(crf: CRF, may_start: Sequence[bool], may_end: Sequence[bool],
                       may_follow: Sequence[Sequence[bool]]) -> CrfScores:
    """The CRF's scores with the transitions a tag scheme forbids masked out."""
    device = crf.transitions.device

    def mask(scores: torch.Tensor, allowed: Sequence) -> torch.Tensor:
        allowed_tensor = torch.tensor(allowed, dtype=torch.bool, device=device)
        return scores.masked_fill(~allowed_tensor, FORBIDDEN)

    return CrfScores(mask(crf.start_transitions, may_start), mask(crf.end_transitions, may_end),
                     mask(crf.transitions, may_follow))


def viterbi(emissions: torch.Tensor, mask: torch.Tensor, scores: CrfScores) -> torch.Tensor:
    """Best tag path of every sentence.

    Args:
        emissions: shape (batch, length, tags).
        mask: shape (batch, length), True on real tokens; every sentence starts at position 0.
        scores: transition scores.

    Returns:
        Tag ids, shape (batch, length); positions past a sentence's end hold its last tag.
    """
    batch, length, num_tags = emissions.shape
    # shape: (batch, tags)
    best = scores.start + emissions[:, 0]
    keep_tag = torch.arange(num_tags, device=emissions.device).expand(batch, num_tags)
    backpointers = []
    for step in range(1, length):
        # shape: (batch, from, to)
        candidates = best.unsqueeze(2) + scores.transitions + emissions[:, step].unsqueeze(1)
        step_best, step_from = candidates.max(dim=1)
        on = mask[:, step].unsqueeze(1)
        best = torch.where(on, step_best, best)
        # Past a sentence's end the path stays on its tag, so backtracking passes through.
        backpointers.append(torch.where(on, step_from, keep_tag))
    last = (best + scores.end).argmax(dim=1)
    path = [last]
    for pointers in reversed(backpointers):
        last = pointers.gather(1, last.unsqueeze(1)).squeeze(1)
        path.append(last)
    path.reverse()
    return torch.stack(path, dim=1)


def log_partition(emissions: torch.Tensor, mask: torch.Tensor, scores: CrfScores) -> torch.Tensor:
    """Log of the sum over all tag paths of exp(path score), per sentence; shape (batch,)."""
    alpha = scores.start + emissions[:, 0]
    for step in range(1, emissions.shape[1]):
        stepped = torch.logsumexp(alpha.unsqueeze(2) + scores.transitions, dim=1) + emissions[:, step]
        alpha = torch.where(mask[:, step].unsqueeze(1), stepped, alpha)
    return torch.logsumexp(alpha + scores.end, dim=1)


def forward_backward(emissions: torch.Tensor, mask: torch.Tensor, scores: CrfScores
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward and backward log-scores, for marginal probabilities.

    Returns:
        alpha: (batch, length, tags), log-sum of the scores of every path prefix ending in
            that tag at that position, its emission included.
        beta: (batch, length, tags), log-sum of the scores of every path suffix after that
            position given that tag, the end transition included; valid up to each
            sentence's last token.
        log_z: (batch,), the log-partition.
    """
    batch, length, _ = emissions.shape
    alphas = [scores.start + emissions[:, 0]]
    for step in range(1, length):
        stepped = torch.logsumexp(alphas[-1].unsqueeze(2) + scores.transitions, dim=1)
        alphas.append(torch.where(mask[:, step].unsqueeze(1), stepped + emissions[:, step],
                                  alphas[-1]))
    last = mask.sum(dim=1) - 1
    betas = [scores.end.expand(batch, -1)]
    for step in range(length - 2, -1, -1):
        after = (emissions[:, step + 1] + betas[-1]).unsqueeze(1)
        stepped = torch.logsumexp(scores.transitions + after, dim=2)
        at_end = (last == step).unsqueeze(1)
        betas.append(torch.where(at_end, scores.end.expand(batch, -1), stepped))
    betas.reverse()
    alpha, beta = torch.stack(alphas, dim=1), torch.stack(betas, dim=1)
    log_z = torch.logsumexp(alpha[:, -1] + scores.end, dim=1)
    return alpha, beta, log_z


def segment_log_probability(emissions: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor,
                            log_z: torch.Tensor, scores: CrfScores, start: int,
                            tag_ids: list[int]) -> float:
    """Log-probability that one sentence's tags from ``start`` on begin with ``tag_ids``.

    Args:
        emissions, alpha, beta: one sentence's, shape (length, tags).
        log_z: its log-partition, a scalar tensor.
    """
    total = alpha[start, tag_ids[0]]
    for offset in range(1, len(tag_ids)):
        total = total + scores.transitions[tag_ids[offset - 1], tag_ids[offset]] + \
            emissions[start + offset, tag_ids[offset]]
    return float((total + beta[start + len(tag_ids) - 1, tag_ids[-1]] - log_z).detach())
