"""A linear-chain CRF, and its algorithms batched over sentences.

The model is torchcrf's (``torchcrf.CRF``: the same parameters, named and initialised the
same way), but torchcrf decodes one sentence at a time in Python and cannot forbid
transitions; here the algorithms are tensor operations over a whole batch, and decoding
keeps to the transitions the tag scheme allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import torch
from torch import nn

FORBIDDEN = -1e4  # large enough to never win, small enough to keep exp() and sums finite


class CrfScores(NamedTuple):
    """Transition scores, forbidden ones set to ``FORBIDDEN``."""

    start: torch.Tensor        # shape: (tags,)
    end: torch.Tensor          # shape: (tags,)
    transitions: torch.Tensor  # shape: (tags, tags), [from, to]


class Transitions(Protocol):
    """What the algorithms read of a CRF: :class:`ConditionalRandomField` or ``torchcrf.CRF``."""

    start_transitions: torch.Tensor  # shape: (tags,)
    end_transitions: torch.Tensor    # shape: (tags,)
    transitions: torch.Tensor        # shape: (tags, tags), [from, to]


class ConditionalRandomField(nn.Module):
    """Transition scores between tags, learnt, and which transitions a tag scheme allows.

    The parameters are torchcrf's, under its names (``start_transitions``,
    ``end_transitions``, ``transitions``) and drawn the same way, so that the weights of
    models made with ``torchcrf.CRF`` load unchanged. The allowed transitions are a mask
    held as buffers, built once by :meth:`constrain` and moved with the module; they are not
    saved with the weights, since the tags and scheme saved beside them rebuild the mask.
    Decoding and marginals keep to the mask; the training loss sums over every path.

    Args:
        num_tags: number of tags.
    """

    def __init__(self, num_tags: int) -> None:
        if num_tags <= 0:
            raise ValueError(f"invalid number of tags: {num_tags}")
        super().__init__()
        self.num_tags = num_tags
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        for parameter in (self.start_transitions, self.end_transitions, self.transitions):
            nn.init.uniform_(parameter, -0.1, 0.1)
        # Everything allowed until constrain() says otherwise.
        self.register_buffer("allowed_start", torch.ones(num_tags, dtype=torch.bool),
                             persistent=False)
        self.register_buffer("allowed_end", torch.ones(num_tags, dtype=torch.bool),
                             persistent=False)
        self.register_buffer("allowed_transitions",
                             torch.ones(num_tags, num_tags, dtype=torch.bool), persistent=False)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    def constrain(self, may_start: Sequence[bool], may_end: Sequence[bool],
                  may_follow: Sequence[Sequence[bool]]) -> None:
        """Allow only these transitions when decoding, as
        :func:`nerlstm.schemes.allowed_transitions` gives them.

        Args:
            may_start: (tags,) whether a sentence may start with each tag.
            may_end: (tags,) whether a sentence may end with each tag.
            may_follow: (tags, tags) whether tag ``j`` may follow tag ``i``, ``[i][j]``.

        Raises:
            ValueError: where a shape does not fit the number of tags.
        """
        device = self.transitions.device
        masks = [torch.tensor(allowed, dtype=torch.bool, device=device)
                 for allowed in (may_start, may_end, may_follow)]
        shapes = [(self.num_tags,), (self.num_tags,), (self.num_tags, self.num_tags)]
        for name, mask, shape in zip(("may_start", "may_end", "may_follow"), masks, shapes):
            if tuple(mask.shape) != shape:
                raise ValueError(f"{name} has shape {tuple(mask.shape)}, expected {shape}")
        self.allowed_start, self.allowed_end, self.allowed_transitions = masks

    def scores(self) -> CrfScores:
        """The transition scores, those not allowed set to ``FORBIDDEN``."""
        return CrfScores(self.start_transitions.masked_fill(~self.allowed_start, FORBIDDEN),
                         self.end_transitions.masked_fill(~self.allowed_end, FORBIDDEN),
                         self.transitions.masked_fill(~self.allowed_transitions, FORBIDDEN))

    def forward(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
                ) -> torch.Tensor:
        """Negative log-likelihood of ``tags``, summed over the batch (see
        :func:`negative_log_likelihood`): the training loss."""
        return negative_log_likelihood(self, emissions, tags, mask)

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Best allowed tag path of every sentence; see :func:`viterbi`."""
        return viterbi(emissions, mask, self.scores())


def constrained_scores(crf: Transitions, may_start: Sequence[bool], may_end: Sequence[bool],
                       may_follow: Sequence[Sequence[bool]]) -> CrfScores:
    """``crf``'s scores with the transitions a tag scheme forbids masked out, for a CRF
    without a mask of its own (a :class:`ConditionalRandomField` has :meth:`scores`)."""
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
    # Tagging's batches hold sentences of similar length: until the shortest one ends,
    # every row steps on and nothing needs masking.
    shortest = int(mask.sum(dim=1).min()) if batch else length
    backpointers = []
    for step in range(1, length):
        # shape: (batch, from, to); the emission is the same for every 'from' tag, so it is
        # added after the max, to (batch, to) instead of (batch, from, to).
        step_best, step_from = (best.unsqueeze(2) + scores.transitions).max(dim=1)
        step_best += emissions[:, step]
        if step < shortest:
            best = step_best
            backpointers.append(step_from)
            continue
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


def forward_scores(emissions: torch.Tensor, mask: torch.Tensor, scores: CrfScores
                   ) -> torch.Tensor:
    """Shape (batch, length, tags): log-sum of the scores of every path prefix ending in that
    tag at that position, its emission included; past a sentence's end, its last column."""
    exp_transitions = scores.transitions.exp()
    alphas = [scores.start + emissions[:, 0]]
    for step in range(1, emissions.shape[1]):
        stepped = log_matmul(alphas[-1], exp_transitions) + emissions[:, step]
        alphas.append(torch.where(mask[:, step].unsqueeze(1), stepped, alphas[-1]))
    return torch.stack(alphas, dim=1)


def backward_scores(emissions: torch.Tensor, mask: torch.Tensor, scores: CrfScores
                    ) -> torch.Tensor:
    """Shape (batch, length, tags): log-sum of the scores of every path suffix after that
    position given that tag, the end transition included; valid up to each sentence's last
    token, finite past it."""
    batch, length, _ = emissions.shape
    last = mask.sum(dim=1) - 1
    exp_transitions_back = scores.transitions.exp().t()
    end = scores.end.expand(batch, -1)
    betas = [end]
    for step in range(length - 2, -1, -1):
        stepped = log_matmul(emissions[:, step + 1] + betas[-1], exp_transitions_back)
        betas.append(torch.where((last == step).unsqueeze(1), end, stepped))
    betas.reverse()
    return torch.stack(betas, dim=1)


def log_matmul(log_values: torch.Tensor, exp_matrix: torch.Tensor) -> torch.Tensor:
    """``log(exp(log_values) @ exp_matrix)`` for log_values (batch, n), each row's maximum
    taken out first so that nothing overflows.

    One step of the forward or backward algorithm, as a product: on a CPU, faster than
    logsumexp over a (batch, tags, tags) sum. Forbidden transitions (FORBIDDEN)
    have exp 0. A term under e^-87 of its row's largest is lost to float32, as a logsumexp
    loses it; only a tag reachable by such terms alone comes out -inf (probability 0).
    """
    top = log_values.amax(dim=1, keepdim=True)
    return (log_values - top).exp_().mm(exp_matrix).log() + top


def forward_backward(emissions: torch.Tensor, mask: torch.Tensor, scores: CrfScores
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward and backward log-scores (see :func:`forward_scores` and
    :func:`backward_scores`) and the log-partition, shape (batch,), for marginals."""
    alpha = forward_scores(emissions, mask, scores)
    log_z = torch.logsumexp(alpha[:, -1] + scores.end, dim=1)
    return alpha, backward_scores(emissions, mask, scores), log_z


def negative_log_likelihood(crf: Transitions, emissions: torch.Tensor, tags: torch.Tensor,
                            mask: torch.Tensor) -> torch.Tensor:
    """``-crf(emissions, tags, mask, reduction="sum")``, with the same gradients, faster.

    torchcrf's autograd records a dozen operations per time step; here the gold path's score
    is a few gathers, and the log-partition's gradient (the marginals) comes from one
    backward pass of the forward-backward algorithm.
    """
    scores = CrfScores(crf.start_transitions, crf.end_transitions, crf.transitions)
    log_z = _LogPartition.apply(emissions, mask, *scores)
    return (log_z - gold_path_score(emissions, tags, mask, scores)).sum()


def gold_path_score(emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor,
                    scores: CrfScores) -> torch.Tensor:
    """Score of the path ``tags`` (batch, length) in each sentence; shape (batch,)."""
    emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2).masked_fill(~mask, 0.0)
    moved = scores.transitions[tags[:, :-1], tags[:, 1:]].masked_fill(~mask[:, 1:], 0.0)
    last_tags = tags.gather(1, (mask.sum(dim=1) - 1).unsqueeze(1)).squeeze(1)
    return (scores.start[tags[:, 0]] + emitted.sum(dim=1) + moved.sum(dim=1)
            + scores.end[last_tags])


class _LogPartition(torch.autograd.Function):
    """Log-partition per sentence; its gradient is the marginal probabilities: of each tag
    at each position (emissions), of each first and last tag (start and end), of each
    pair of neighbouring tags (transitions)."""

    @staticmethod
    def forward(ctx, emissions: torch.Tensor, mask: torch.Tensor, start: torch.Tensor,
                end: torch.Tensor, transitions: torch.Tensor) -> torch.Tensor:
        alpha = forward_scores(emissions, mask, CrfScores(start, end, transitions))
        log_z = torch.logsumexp(alpha[:, -1] + end, dim=1)
        ctx.save_for_backward(emissions, mask, start, end, transitions, alpha, log_z)
        return log_z

    @staticmethod
    def backward(ctx, grad_log_z: torch.Tensor):
        emissions, mask, start, end, transitions, alpha, log_z = ctx.saved_tensors
        beta = backward_scores(emissions, mask, CrfScores(start, end, transitions))
        weight = grad_log_z.view(-1, 1, 1)
        outside = ~mask.unsqueeze(2)  # past a sentence's end: probability 0
        unary = (alpha + beta - log_z.view(-1, 1, 1)).masked_fill(outside, -torch.inf).exp()
        unary = unary * weight
        last = (mask.sum(dim=1) - 1).view(-1, 1, 1).expand(-1, 1, unary.shape[2])
        # P(tag i at t, tag j at t + 1) = exp(alpha[t, i]) exp(transition[i, j])
        # exp(emission[t + 1, j] + beta[t + 1, j]) / Z: summed over positions, one product.
        # Each position's largest prefix and suffix scores are taken out; float64, so that
        # what is taken out (their sum against log Z) cannot overflow.
        prefix = alpha[:, :-1].double()
        suffix = (emissions[:, 1:] + beta[:, 1:]).double()
        prefix_top = prefix.amax(dim=2, keepdim=True)
        suffix_top = suffix.amax(dim=2, keepdim=True)
        scale = (prefix_top + suffix_top - log_z.view(-1, 1, 1)).masked_fill(
            outside[:, 1:], -torch.inf).exp() * weight
        left = ((prefix - prefix_top).exp() * scale).flatten(0, 1)
        right = (suffix - suffix_top).exp().flatten(0, 1)
        grad_transitions = (left.t().mm(right) * transitions.double().exp()).to(transitions.dtype)
        return (unary, None, unary[:, 0].sum(dim=0), unary.gather(1, last).sum(dim=(0, 1)),
                grad_transitions)


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
