"""Each torch internal that nerlstm uses gives what its public fallback gives."""

import os
import subprocess
import sys

import torch
from conftest import ROOT

from nerlstm import torch_compat


def test_the_fused_lstm_and_its_fallback_compute_the_same(monkeypatch):
    torch.manual_seed(0)
    for bias in (True, False):
        lstm = torch.nn.LSTM(5, 7, batch_first=True, bias=bias)
        inputs, initial = torch.randn(3, 4, 5), torch.randn(1, 3, 7)
        expected, _ = lstm(inputs, (initial, initial))
        fused = torch_compat.lstm_direction(inputs, initial, lstm.all_weights[0], bias, False)
        assert torch.equal(fused, expected)
        monkeypatch.setattr(torch_compat, "_fused_lstm", False)
        fallback = torch_compat.lstm_direction(inputs, initial, lstm.all_weights[0], bias, False)
        monkeypatch.undo()
        assert torch.equal(fallback, expected)


def test_the_lstm_falls_back_where_torch_lstm_refuses_its_arguments(monkeypatch):
    def refuse(*args):
        raise TypeError("lstm() received an invalid combination of arguments")

    monkeypatch.setattr(torch, "lstm", refuse)
    monkeypatch.setattr(torch_compat, "_fused_lstm", True)
    lstm = torch.nn.LSTM(2, 3, batch_first=True)
    inputs, initial = torch.randn(1, 2, 2), torch.zeros(1, 1, 3)
    got = torch_compat.lstm_direction(inputs, initial, lstm.all_weights[0], True, False)
    assert torch.equal(got, lstm(inputs)[0]) and torch_compat._fused_lstm is False


def test_bfloat16_support_has_an_answer_without_onednns(monkeypatch):
    answer = torch_compat.cpu_has_bfloat16()
    assert isinstance(answer, bool)

    def missing():
        raise RuntimeError("no such operator mkldnn::_is_mkldnn_bf16_supported")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", missing)
    assert isinstance(torch_compat.cpu_has_bfloat16(), bool)


def test_lerp_all_steps_every_tensor_as_lerp_does(monkeypatch):
    sources = [torch.randn(3), torch.randn(2, 2)]
    expected = [torch.zeros(3).lerp_(sources[0], 0.25), torch.zeros(2, 2).lerp_(sources[1], 0.25)]
    for fused in (True, False):
        if not fused:
            monkeypatch.delattr(torch, "_foreach_lerp_")
        targets = [torch.zeros(3), torch.zeros(2, 2)]
        torch_compat.lerp_all_(targets, sources, 0.25)
        assert all(torch.equal(t, e) for t, e in zip(targets, expected))


def test_the_onednn_cache_is_set_on_import_before_torch_and_the_users_setting_wins():
    probe = ("import os, sys\nimport nerlstm.torch_compat as c\nassert 'torch' not in sys.modules\n"
             "c.configure_onednn_cache()\nprint(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])")
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    for given, expected in ((None, "16"), ("64", "64")):
        if given:
            env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = given
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              cwd=ROOT, env=env)
        assert done.stdout.strip() == expected, done.stderr
