"""The model's fast paths against plain implementations of the same computation."""

import random

import pytest
import torch
from conftest import SENTENCES
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torchcrf import CRF

from nerlstm.config import Config
from nerlstm.model import (
    GROUP_CELLS,
    bidirectional_lstm,
    cheapest_length_groups,
    dropout,
    length_groups,
    lstm_products,
)
from nerlstm.training import TrainingData, build_tagger


def packed_lstm(lstm, inputs, lengths):
    packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
    encoded, _ = lstm(packed)
    return pad_packed_sequence(encoded, batch_first=True, total_length=inputs.shape[1])[0]


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("lengths", [[9, 1, 2, 2, 3, 1], [4, 4, 3, 4], [6]])
def test_bidirectional_lstm_and_its_gradients_equal_nn_lstm_on_packed_input(layers, lengths):
    torch.manual_seed(layers)
    lstm = torch.nn.LSTM(5, 7, num_layers=layers, batch_first=True, bidirectional=True)
    lengths = torch.tensor(lengths)
    mask = torch.arange(int(lengths.max())).unsqueeze(0) < lengths.unsqueeze(1)
    inputs = torch.randn(len(lengths), int(lengths.max()), 5, requires_grad=True)
    inputs.data[~mask] = 100.0  # padding must not leak into any real position
    weights = [inputs, *lstm.parameters()]
    plain = packed_lstm(lstm, inputs, lengths)
    plain_grads = torch.autograd.grad((plain * torch.linspace(-1, 1, 14)).sum(), weights)
    fast = bidirectional_lstm(lstm, inputs, lengths, mask)
    fast_grads = torch.autograd.grad((fast * torch.linspace(-1, 1, 14)).sum(), weights)
    assert torch.allclose(fast, plain, atol=1e-5)
    assert not fast[~mask].any()
    for fast_grad, plain_grad in zip(fast_grads, plain_grads):
        assert torch.allclose(fast_grad, plain_grad, atol=1e-5)


@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_products_equal_the_output_layer_over_the_joined_states(layers):
    torch.manual_seed(layers)
    lstm = torch.nn.LSTM(5, 7, num_layers=layers, batch_first=True, bidirectional=True).eval()
    weight = torch.randn(6, 14)
    lengths = torch.tensor([60, 1, 30, 2, 60, 8, 30, 45, 1, 3, 15, 15])
    assert len(cheapest_length_groups(lengths.tolist())) >= 4
    mask = torch.arange(int(lengths.max())).unsqueeze(0) < lengths.unsqueeze(1)
    inputs = torch.randn(len(lengths), int(lengths.max()), 5)
    inputs[~mask] = 100.0
    with torch.inference_mode():
        plain = torch.nn.functional.linear(packed_lstm(lstm, inputs, lengths), weight)
        fast = lstm_products(lstm, inputs, lengths, mask, weight)
    assert torch.allclose(fast, plain, atol=1e-5)
    assert not fast[~mask].any()


def every_cutting(rows: list[int]):
    """Every way to cut ``rows`` into consecutive runs."""
    if not rows:
        yield []
        return
    for end in range(1, len(rows) + 1):
        for rest in every_cutting(rows[end:]):
            yield [rows[:end], *rest]


def test_cheapest_length_groups_cost_least_of_every_cutting():
    def cost(groups, lengths):
        longest = [max(lengths[row] for row in group) for group in groups]
        return sum(top * (len(group) + 1) + GROUP_CELLS for top, group in zip(longest, groups))

    rng = random.Random(1)
    for _ in range(60):
        lengths = [rng.choice([1, 2, 3, 5, 8, 20, 40]) for _ in range(rng.randint(1, 9))]
        groups = cheapest_length_groups(lengths)
        order = [row for group in groups for row in group]
        assert sorted(order) == list(range(len(lengths)))
        assert [lengths[row] for row in order] == sorted(lengths, reverse=True)
        longest_first = sorted(range(len(lengths)), key=lambda row: -lengths[row])
        best = min(cost(cutting, lengths) for cutting in every_cutting(longest_first))
        assert cost(groups, lengths) == best
    assert cheapest_length_groups([4, 4, 4]) == [[0, 1, 2]]
    # one long row among short ones runs alone; rows of the same length stay together
    assert cheapest_length_groups([60, 2, 2, 2, 2, 2]) == [[0], [1, 2, 3, 4, 5]]


def test_length_groups_split_where_the_fewest_padded_steps_are_left():
    # one long sentence among short ones: it runs alone (10 + 4 * 3 cells, not 50)
    assert length_groups([3, 10, 2, 3, 1]) == [[1], [0, 3, 2, 4]]
    # equal lengths, or a saving under a fifth: one group, longest first
    assert length_groups([4, 4, 4]) == [[0, 1, 2]]
    assert length_groups([5, 4, 5, 5]) == [[0, 2, 3, 1]]
    rng = random.Random(0)
    for _ in range(50):
        lengths = [rng.randint(1, 40) for _ in range(rng.randint(1, 30))]
        groups = length_groups(lengths)
        assert sorted(row for group in groups for row in group) == list(range(len(lengths)))
        cells = sum(len(group) * lengths[group[0]] for group in groups)
        ordered = sorted(lengths, reverse=True)
        whole = ordered[0] * len(lengths)
        best = min([whole] + [ordered[0] * cut + ordered[cut] * (len(lengths) - cut)
                              for cut in range(1, len(lengths))])
        if len(groups) == 2:
            assert cells == best < 0.8 * whole
        else:
            assert cells == whole and best >= 0.8 * whole


def test_dropout_keeps_the_expected_value_and_is_off_in_evaluation():
    torch.manual_seed(0)
    inputs = torch.ones(200, 30, 50)
    dropped = dropout(inputs, 0.3, training=True)
    assert dropped.unique().tolist() == pytest.approx([0.0, 1 / 0.7])
    assert abs((dropped == 0).float().mean().item() - 0.3) < 0.01
    assert dropout(inputs, 0.3, training=False) is inputs
    assert dropout(inputs, 0.0, training=True) is inputs


def plain_loss(model, batch):
    """The model's loss computed the plain way: indexing, nn.LSTM on packed input, loops
    for the document means (of each word and of the whole context), and torchcrf's
    log-likelihood."""
    per_word = model.char_encoder(batch.char_ids, batch.char_lengths)
    if model.config.char_projection:
        per_word = per_word @ model.char_projection.weight.T + model.char_projection.bias
    inputs = torch.cat([model.word_embedding(batch.word_ids), per_word[batch.word_to_distinct]],
                       dim=2)
    encoded = packed_lstm(model.lstm, inputs, batch.lengths)
    flat_ids = batch.group_ids.reshape(-1)
    flat = encoded.reshape(flat_ids.shape[0], -1)
    means = torch.stack([flat[flat_ids == group].mean(dim=0) for group in flat_ids.tolist()])
    features = [encoded, means.view_as(encoded)]
    if model.config.doc_summary:  # each context's mean state over its real tokens
        contexts = batch.context_group_ids
        features.append(torch.stack([
            torch.stack([encoded[(contexts == contexts[row, position]) & batch.mask].mean(dim=0)
                         if batch.mask[row, position] else encoded.new_zeros(encoded.shape[2])
                         for position in range(contexts.shape[1])])
            for row in range(contexts.shape[0])]))
    features = torch.cat(features, dim=2)
    # torchcrf's likelihood over the model's own CRF parameters, as the reference
    reference = CRF(model.crf.num_tags, batch_first=True)
    likelihood = torch.func.functional_call(
        reference, dict(model.crf.named_parameters()),
        (model.to_tags(features), batch.tag_ids, batch.mask), {"reduction": "sum"})
    return -likelihood


@pytest.mark.parametrize("summary, projection", [(True, 0), (False, 0), (True, 3)])
def test_the_models_loss_and_gradients_equal_the_plain_computation(summary, projection):
    torch.manual_seed(0)
    config = Config(hidden=8, char_hidden=4, word_dim=8, dropout=0.0, word_unk_prob=0.0,
                    context_dropout=0.0, doc_summary=summary, char_projection=projection)
    sentences = [*SENTENCES, *SENTENCES[::-1]]
    tagger = build_tagger(sentences, config, "cpu")
    model = tagger.model.train()
    data = TrainingData(sentences, tagger.encoder, config, "cpu")
    batch = data.batch(list(range(len(sentences))), random.Random(0))
    assert len(length_groups(batch.lengths.tolist())) == 2  # the grouped path runs
    parameters = list(model.parameters())
    fast = model.loss(batch)
    fast_grads = torch.autograd.grad(fast, parameters)
    plain = plain_loss(model, batch)
    plain_grads = torch.autograd.grad(plain, parameters)
    assert fast.item() == pytest.approx(plain.item(), rel=1e-5)
    for fast_grad, plain_grad in zip(fast_grads, plain_grads):
        assert torch.allclose(fast_grad, plain_grad, atol=1e-5)


PRIMITIVE_CACHE_PROBE = """
import random
import torch
import nerlstm.model  # sets oneDNN's primitive cache capacity, unless set already
torch.set_num_threads(1)
lstm = torch.nn.LSTM(200, 256, batch_first=True)
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
rng = random.Random(0)
start = rss()
for _ in range(300):  # batches of ever-new shapes, as training draws them
    rows, length = rng.randint(1, 40), rng.randint(2, 60)
    inputs = torch.randn(rows, length, 200, requires_grad=True)
    initial = torch.zeros(1, rows, 256)
    torch.lstm(inputs, (initial, initial), lstm.all_weights[0], True, 1, 0.0, True, False,
               True)[0].sum().backward()
print((rss() - start) // 1024)
"""


@pytest.mark.slow
@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch without oneDNN")
def test_the_lstm_primitives_oneDNN_keeps_stay_few():
    import os
    import subprocess
    import sys

    def growth(**env) -> int:
        done = subprocess.run([sys.executable, "-c", PRIMITIVE_CACHE_PROBE], env={
            **{k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"},
            **env}, capture_output=True, text=True, check=True)
        return int(done.stdout)

    # 300 new shapes: about 60 MiB more with 16 primitives kept, 160 with oneDNN's 1,024
    assert growth() + 50 < growth(ONEDNN_PRIMITIVE_CACHE_CAPACITY="1024")
