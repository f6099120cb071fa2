import itertools

import pytest
import torch
from torchcrf import CRF

from nerlstm import schemes
from nerlstm.crf import (
    FORBIDDEN,
    ConditionalRandomField,
    CrfScores,
    backward_scores,
    constrained_scores,
    forward_scores,
    viterbi,
)


def path_score(emissions, path, scores):
    total = scores.start[path[0]] + scores.end[path[-1]]
    total = total + sum(emissions[position, tag] for position, tag in enumerate(path))
    return total + sum(scores.transitions[a, b] for a, b in zip(path, path[1:]))


def log_partition(emissions, mask, scores):
    """Log of the sum over all tag paths of exp(path score), per sentence."""
    return torch.logsumexp(forward_scores(emissions, mask, scores)[:, -1] + scores.end, dim=1)


def random_problem(seed, num_tags=5, batch=4, length=5):
    """torchcrf's CRF with random transitions (the reference), emissions and a ragged mask."""
    torch.manual_seed(seed)
    crf = CRF(num_tags, batch_first=True)
    torch.nn.init.normal_(crf.transitions)
    torch.nn.init.normal_(crf.start_transitions)
    torch.nn.init.normal_(crf.end_transitions)
    emissions = torch.randn(batch, length, num_tags)
    lengths = torch.tensor([length, 1, 3, length - 1][:batch])
    mask = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
    return crf, emissions, mask, lengths


def plain_forward_backward(emissions, mask, scores):
    """The forward and backward recursions as logsumexp over every pair of tags, one sentence
    at a time: alpha and beta of shape (length, tags) per sentence, and log Z."""
    results = []
    for row in range(emissions.shape[0]):
        length = int(mask[row].sum())
        own = emissions[row, :length]
        alpha = [scores.start + own[0]]
        for step in range(1, length):
            alpha.append(torch.logsumexp(alpha[-1].unsqueeze(1) + scores.transitions, 0)
                         + own[step])
        beta = [scores.end]
        for step in range(length - 2, -1, -1):
            beta.append(torch.logsumexp(scores.transitions + own[step + 1] + beta[-1], 1))
        beta.reverse()
        log_z = torch.logsumexp(alpha[-1] + scores.end, 0)
        results.append((torch.stack(alpha), torch.stack(beta), log_z))
    return results


def our_crf(crf, allowed=None):
    """Our CRF module with ``crf``'s (torchcrf's) weights, constrained to ``allowed``."""
    module = ConditionalRandomField(crf.num_tags)
    module.load_state_dict(crf.state_dict())
    if allowed is not None:
        module.constrain(*allowed)
    return module


def unconstrained(crf):
    return CrfScores(crf.start_transitions, crf.end_transitions, crf.transitions)


def test_viterbi_is_the_brute_force_best_path_on_ragged_batches():
    for seed in range(5):
        crf, emissions, mask, lengths = random_problem(seed)
        scores = unconstrained(crf)
        best = viterbi(emissions, mask, scores)
        for row, length in enumerate(lengths.tolist()):
            paths = itertools.product(range(crf.num_tags), repeat=length)
            expected = max(paths, key=lambda p: path_score(emissions[row], p, scores).item())
            assert best[row, :length].tolist() == list(expected)


def test_viterbi_equals_torchcrf_decode():
    crf, emissions, mask, lengths = random_problem(7, num_tags=9, batch=4, length=12)
    best = viterbi(emissions, mask, unconstrained(crf))
    reference = crf.decode(emissions, mask)
    assert [best[row, :n].tolist() for row, n in enumerate(lengths.tolist())] == reference


def test_log_partition_is_the_brute_force_sum_and_matches_torchcrf():
    crf, emissions, mask, lengths = random_problem(3)
    scores = unconstrained(crf)
    computed = log_partition(emissions, mask, scores)
    for row, length in enumerate(lengths.tolist()):
        every = [path_score(emissions[row], p, scores)
                 for p in itertools.product(range(crf.num_tags), repeat=length)]
        assert torch.allclose(computed[row], torch.logsumexp(torch.stack(every), 0), atol=1e-5)
    tags = torch.zeros_like(mask, dtype=torch.long)
    gold = torch.stack([path_score(emissions[r], [0] * n, scores) for r, n in
                        enumerate(lengths.tolist())])
    assert torch.allclose(crf(emissions, tags, mask, reduction="none"), gold - computed, atol=1e-4)


def test_constrained_viterbi_is_the_best_well_formed_path():
    tags = schemes.tag_set(["LOC", "PER"], "bioes")
    allowed = schemes.allowed_transitions(tags, "bioes")
    crf, emissions, mask, lengths = random_problem(11, num_tags=len(tags), batch=3, length=4)
    best = our_crf(crf, allowed).decode(emissions, mask)
    plain = unconstrained(crf)
    for row, length in enumerate(lengths.tolist()):
        well_formed = [p for p in itertools.product(range(len(tags)), repeat=length)
                       if schemes.convert([tags[i] for i in p], "bioes") == [tags[i] for i in p]]
        expected = max(well_formed, key=lambda p: path_score(emissions[row], p, plain).item())
        assert best[row, :length].tolist() == list(expected)


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("spread", [1.0, 30.0])
def test_forward_and_backward_scores_equal_the_logsumexp_recursions(constrained, spread):
    """The product form (log_matmul) against logsumexp over tag pairs, with forbidden
    transitions and with emissions far apart (terms of e^-100 and less)."""
    tags = schemes.tag_set(["LOC", "PER"], "bioes")
    crf, emissions, mask, lengths = random_problem(9, num_tags=len(tags), batch=4, length=9)
    emissions = emissions * spread
    scores = (our_crf(crf, schemes.allowed_transitions(tags, "bioes")).scores()
              if constrained else unconstrained(crf))
    with torch.no_grad():
        alpha, beta = forward_scores(emissions, mask, scores), backward_scores(emissions, mask, scores)
        log_z = log_partition(emissions, mask, scores)
        for row, (plain_alpha, plain_beta, plain_log_z) in enumerate(
                plain_forward_backward(emissions, mask, scores)):
            length = int(lengths[row])
            assert log_z[row].item() == pytest.approx(plain_log_z.item(), rel=1e-5, abs=1e-4)
            marginals = (alpha[row, :length] + beta[row, :length] - log_z[row]).exp()
            plain_marginals = (plain_alpha + plain_beta - plain_log_z).exp()
            # float32 rounds scores of hundreds (spread 30) to about 1e-5 each
            assert torch.allclose(marginals, plain_marginals, atol=1e-5 * spread)
            # Where a prefix or suffix is possible at all, its score is the same.
            for ours, plain in ((alpha[row, :length], plain_alpha), (beta[row, :length], plain_beta)):
                possible = plain > plain.amax(dim=1, keepdim=True) - 80
                assert torch.allclose(ours[possible], plain[possible], rtol=1e-5, atol=1e-3)


def test_forward_backward_segment_probabilities_match_brute_force():
    from nerlstm.crf import forward_backward, segment_log_probability

    crf, emissions, mask, lengths = random_problem(5, num_tags=3, batch=3, length=4)
    crf.requires_grad_(False)
    scores = unconstrained(crf)
    alpha, beta, log_z = forward_backward(emissions, mask, scores)
    assert torch.allclose(log_z, log_partition(emissions, mask, scores), atol=1e-5)
    for row, length in enumerate(lengths.tolist()):
        paths = list(itertools.product(range(3), repeat=length))
        weights = torch.stack([path_score(emissions[row], p, scores) for p in paths]).exp()
        weights = weights / weights.sum()
        for start in range(length):
            for segment in itertools.product(range(3), repeat=min(2, length - start)):
                expected = sum(w for p, w in zip(paths, weights)
                               if tuple(p[start:start + len(segment)]) == segment)
                got = segment_log_probability(emissions[row], alpha[row], beta[row], log_z[row],
                                              scores, start, list(segment))
                assert abs(torch.tensor(got).exp().item() - float(expected)) < 1e-5


@pytest.mark.parametrize("scheme", ["bioes", "iob2"])
def test_entity_scores_are_span_marginals(scheme):
    """A tagger's entity score equals the brute-force probability of that exact span."""
    from nerlstm.config import Config
    from nerlstm.conll import Sentence
    from nerlstm.training import build_tagger

    torch.manual_seed(4)
    train = [Sentence(["Ann", "met", "Bob", "Lee"], ["B-PER", "O", "B-PER", "I-PER"])]
    tagger = build_tagger(train, Config(hidden=4, char_hidden=3, word_dim=4, train_scheme=scheme),
                          "cpu")
    for parameter in (tagger.model.crf.transitions, tagger.model.crf.start_transitions):
        torch.nn.init.normal_(parameter, std=0.5)
    tagger.model.requires_grad_(False)
    # Favour entity tags, so that the best path has entities to score.
    outside = tagger.encoder.tags.index["O"]
    tagger.model.to_tags.bias.add_(1.0)[outside] -= 1.0
    tokens = ["Bob", "Lee", "met", "Ann"]
    (tagged,) = tagger.tag([tokens], scores=True)
    tagger.model.eval()
    with torch.no_grad():
        emissions = tagger.model.emissions(tagger.encoder.batch([tokens], [0]))[0]
    symbols = tagger.encoder.tags.symbols
    scores = tagger.model.crf.scores()
    paths = [p for p in itertools.product(range(len(symbols)), repeat=len(tokens))
             if path_score(emissions, p, scores) > -1000]
    weights = torch.stack([path_score(emissions, p, scores) for p in paths]).exp()
    weights = weights / weights.sum()
    assert tagged.entities
    for entity in tagged.entities:
        span = schemes.Span(entity.type, entity.start, entity.end)
        expected = sum(w for p, w in zip(paths, weights)
                       if span in schemes.spans([symbols[i] for i in p]))
        assert abs(entity.score - float(expected)) < 1e-4


@pytest.mark.parametrize("seed, spread", [(0, 1.0), (1, 1.0), (2, 1.0), (3, 20.0)])
def test_negative_log_likelihood_and_its_gradients_equal_torchcrf(seed, spread):
    from nerlstm.crf import negative_log_likelihood

    crf, emissions, mask, _ = random_problem(seed, num_tags=6, batch=4, length=7)
    emissions = (emissions * spread).requires_grad_(True)
    tags = torch.randint(0, crf.num_tags, mask.shape)
    # positions past a sentence's end hold any tag: they must not count
    tags[~mask] = torch.randint(0, crf.num_tags, (int((~mask).sum()),))
    wanted = [emissions, *crf.parameters()]
    reference = -crf(emissions, tags, mask, reduction="sum")
    reference_grads = torch.autograd.grad(reference * 1.7, wanted)
    fast = negative_log_likelihood(crf, emissions, tags, mask)
    fast_grads = torch.autograd.grad(fast * 1.7, wanted)
    assert fast.item() == pytest.approx(reference.item(), rel=1e-6)
    for fast_grad, reference_grad in zip(fast_grads, reference_grads):
        assert torch.allclose(fast_grad, reference_grad, atol=1e-5 * spread)
    assert fast_grads[0][~mask].abs().max() == 0  # no gradient to padding


def test_negative_log_likelihood_weights_each_sentence_by_its_incoming_gradient():
    from nerlstm.crf import _LogPartition

    crf, emissions, mask, _ = random_problem(4, num_tags=4, batch=4, length=6)
    emissions.requires_grad_(True)
    weights = torch.tensor([0.5, -1.0, 2.0, 0.0])
    fast = _LogPartition.apply(emissions, mask, crf.start_transitions, crf.end_transitions,
                               crf.transitions)
    scores = unconstrained(crf)
    plain = torch.stack([log_z for _, _, log_z in plain_forward_backward(emissions, mask, scores)])
    assert torch.allclose(fast, plain, atol=1e-5)
    wanted = [emissions, *crf.parameters()]
    for fast_grad, plain_grad in zip(torch.autograd.grad((fast * weights).sum(), wanted),
                                     torch.autograd.grad((plain * weights).sum(), wanted)):
        assert torch.allclose(fast_grad, plain_grad, atol=1e-5)


def test_the_crf_module_keeps_torchcrfs_parameters_and_saves_no_mask():
    """Model files written when the model held a torchcrf.CRF load into the module, and the
    same seed draws the same initial weights."""
    torch.manual_seed(5)
    reference = CRF(3, batch_first=True)
    torch.manual_seed(5)
    module = ConditionalRandomField(3)
    module.constrain(*schemes.allowed_transitions(schemes.tag_set(["X"], "iob2"), "iob2"))
    saved = module.state_dict()
    assert list(saved) == list(reference.state_dict()) == [
        "start_transitions", "end_transitions", "transitions"]
    assert all(torch.equal(saved[name], value) for name, value in reference.state_dict().items())
    assert [name for name, _ in module.named_parameters()] == list(saved)
    fresh = ConditionalRandomField(3)
    fresh.load_state_dict(reference.state_dict())  # strict: no key missing or left over
    assert fresh.allowed_transitions.all()  # the mask comes from constrain(), not the file


def test_the_mask_is_built_once_and_decoding_keeps_to_it():
    tags = schemes.tag_set(["LOC", "PER"], "bioes")
    allowed = schemes.allowed_transitions(tags, "bioes")
    crf, emissions, mask, _ = random_problem(2, num_tags=len(tags), batch=3, length=6)
    module = our_crf(crf, allowed)
    assert module.allowed_transitions.tolist() == allowed[2]
    assert {name for name, _ in module.named_buffers()} == {
        "allowed_start", "allowed_end", "allowed_transitions"}
    expected = constrained_scores(crf, *allowed)
    for got, wanted in zip(module.scores(), expected):
        assert torch.equal(got, wanted)
    assert module.scores().transitions[tags.index("B-LOC"), tags.index("O")] == FORBIDDEN
    assert torch.equal(module.decode(emissions, mask), viterbi(emissions, mask, expected))
    with pytest.raises(ValueError, match="may_end has shape"):
        module.constrain(allowed[0], allowed[1][:-1], allowed[2])


def test_a_tagger_constrains_its_crf_once_not_on_every_call(monkeypatch):
    from nerlstm.config import Config
    from nerlstm.conll import Sentence
    from nerlstm.training import build_tagger

    train = [Sentence(["Ann", "met", "Bob"], ["B-PER", "O", "B-PER"])]
    tagger = build_tagger(train, Config(hidden=4, char_hidden=3, word_dim=4), "cpu")
    may_follow = tagger.model.crf.allowed_transitions
    assert not may_follow.all() and may_follow.tolist() == tagger.allowed[2]

    def refuse(*args):
        raise AssertionError("constrained again")

    monkeypatch.setattr(ConditionalRandomField, "constrain", refuse)
    monkeypatch.setattr(schemes, "allowed_transitions", refuse)
    assert len(tagger.predict([["Ann", "met", "Bob"], []])) == 2
