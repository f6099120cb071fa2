"""Training runs: interruption, checkpoints, resuming, determinism."""

import json
import os
import signal
from dataclasses import replace

import pytest
import torch
from conftest import DATA, TINY, run_cli

from nerlstm import training
from nerlstm.config import Config
from nerlstm.conll import read_tagged
from nerlstm.modelfile import load_model
from nerlstm.signals import stop_requests
from nerlstm.training import (
    TrainingListener,
    WeightAverage,
    checkpoint_path,
    make_optimizer,
    metrics_log_path,
    resume_from,
    train,
)

CONFIG = Config(word_dim=16, char_dim=8, char_hidden=8, hidden=16, epochs=3, batch_size=16,
                seed=5)


@pytest.fixture(scope="module")
def data():
    return read_tagged(str(DATA / "train.txt")).sentences, read_tagged(str(DATA / "dev.txt")).sentences


class SignalAfter(TrainingListener):
    """Sends a signal to this process after a given number of batches of an epoch."""

    def __init__(self, batches: int, number: int = signal.SIGINT, in_epoch: int = 1) -> None:
        self.left, self.number, self.in_epoch = batches, number, in_epoch
        self.epoch = 0

    def epoch_started(self, epoch: int, sentences: int) -> None:
        self.epoch = epoch

    def batch_done(self, sentences: int, loss: float) -> None:
        if self.epoch != self.in_epoch:
            return
        self.left -= 1
        if self.left == 0:
            os.kill(os.getpid(), self.number)


def weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.parametrize("average_decay", [0.0, 0.9])
def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(data, tmp_path, sigint_raises,
                                                                 average_decay):
    torch.set_num_threads(1)
    train_sentences, dev_sentences = data
    # lr 0.1, seed 4: dev F1 improves in the last epoch, so the final models come from after
    # resuming (asserted below)
    config = replace(CONFIG, lr=0.1, seed=4, average_decay=average_decay)
    straight = tmp_path / "straight.pt"
    uninterrupted = train(train_sentences, dev_sentences, config, model_path=str(straight))
    assert uninterrupted.best_epoch == 3
    assert not os.path.exists(checkpoint_path(str(straight)))  # a finished run leaves none

    stopped = tmp_path / "stopped.pt"
    result = train(train_sentences, dev_sentences, config, model_path=str(stopped),
                   listener=SignalAfter(12, in_epoch=2))
    assert result.stopped_by_signal == signal.SIGINT
    assert result.best_epoch == 1
    load_model(str(stopped))  # the best model so far is intact
    checkpoint = resume_from(checkpoint_path(str(stopped)))
    assert checkpoint["progress"]["epoch"] == 2 and checkpoint["progress"]["batches_done"] == 12

    resumed = train(train_sentences, dev_sentences, config, model_path=str(stopped),
                    resume=checkpoint)
    assert resumed.stopped_by_signal is None
    first, second = weights(straight), weights(stopped)
    assert all(torch.equal(first[name], second[name]) for name in first)
    rows = [json.loads(line) for line in open(metrics_log_path(str(stopped)))]
    assert len(rows) == 3
    for row, straight_row in zip(rows, uninterrupted.rows):
        assert (row["loss"], row["dev_f1"]) == (straight_row["loss"], straight_row["dev_f1"])
    # the resumed epoch's speed counts only the sentences trained after resuming
    left = sum(len(batch) for batch in checkpoint["progress"]["order"][12:])
    assert rows[1]["sentences_per_second"] * rows[1]["train_seconds"] == pytest.approx(left)


def test_a_signal_ignored_at_start_stays_ignored():
    """A background job of a script starts with SIGINT ignored; training must not take it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_requests() as caught:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # still handled
            os.kill(os.getpid(), signal.SIGINT)
            assert caught == []
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_signal_while_the_data_is_read_ends_train_before_it_begins(tmp_path, monkeypatch):
    """The command takes SIGTERM from its start: one that comes while a (large) file is read
    ends it with a message and 143, not by the signal's default action."""
    from nerlstm import api

    read = api.read_data

    def read_then_signal(*args, **kwargs):
        data = read(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return data

    monkeypatch.setattr(api, "read_data", read_then_signal)
    model = tmp_path / "m.pt"
    result = run_cli("train", DATA / "train.txt", "--dev", DATA / "dev.txt", "-m", model, *TINY)
    assert result.exit_code == 143, result.output
    assert "interrupted before training began: nothing was written" in result.output
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handed back


def test_sigterm_stops_after_the_batch_and_keeps_the_best_model(data, tmp_path):
    torch.set_num_threads(1)
    train_sentences, dev_sentences = data
    model = tmp_path / "m.pt"
    result = train(train_sentences, dev_sentences, CONFIG, model_path=str(model),
                   listener=SignalAfter(3, signal.SIGTERM))
    assert result.stopped_by_signal == signal.SIGTERM
    assert result.best_epoch is None and not model.exists()  # stopped before any epoch ended
    assert resume_from(checkpoint_path(str(model)))["progress"]["batches_done"] == 3


def test_stale_temporary_files_are_cleaned_up(data, tmp_path):
    train_sentences, dev_sentences = data
    model = tmp_path / "m.pt"
    stale = tmp_path / ".m.pt.abc123.tmp"
    stale.write_bytes(b"half a model")
    train(train_sentences[:50], None, Config(**{**CONFIG.__dict__, "epochs": 1}),
          model_path=str(model))
    assert not stale.exists() and model.exists()


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_context_dropout_reads_that_share_of_sentences_alone(data, tmp_path, monkeypatch, share):
    from nerlstm.batching import Encoder, context_ids

    torch.set_num_threads(1)
    train_sentences, _ = data
    seen: list[int] = []
    plain_batch = Encoder.batch

    def recording(self, sentences, indices, tags=None, contexts=None):
        seen.extend(contexts[index] for index in indices)
        return plain_batch(self, sentences, indices, tags, contexts)

    monkeypatch.setattr(Encoder, "batch", recording)
    config = Config(word_dim=8, char_dim=4, char_hidden=4, hidden=8, epochs=2,
                    context_dropout=share)
    train(train_sentences, None, config, model_path=str(tmp_path / "m.pt"))
    alone = sum(context < 0 for context in seen) / len(seen)
    assert len(seen) == 2 * len(train_sentences)
    assert alone == pytest.approx(share, abs=0.06)
    documents = context_ids([s.document for s in train_sentences])
    if share == 0.0:
        assert sorted(seen) == sorted(documents * 2)


def plain_moving_average(history, decay):
    """The average of a list of parameter snapshots, one update at a time."""
    average = [p.clone() for p in history[0]]
    for n, snapshot in enumerate(history[1:]):
        d = min(decay, (1 + n) / (10 + n))
        average = [d * a + (1 - d) * p for a, p in zip(average, snapshot)]
    return average


def test_weight_average_is_the_moving_average_and_applied_restores_the_weights():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    averaged = WeightAverage(model, 0.9)
    history = [[p.detach().clone() for p in model.parameters()]]
    for _ in range(30):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn_like(parameter))
        averaged.update()
        history.append([p.detach().clone() for p in model.parameters()])
    expected = plain_moving_average(history, 0.9)
    own = [p.detach().clone() for p in model.parameters()]
    with averaged.applied():
        for parameter, wanted, live in zip(model.parameters(), expected, own):
            assert torch.allclose(parameter, wanted, atol=1e-6)
            assert not torch.allclose(parameter, live, atol=1e-2)
    assert all(torch.equal(p, kept) for p, kept in zip(model.parameters(), own))

    restored = WeightAverage(model, 0.9)
    restored.load_state_dict(averaged.state_dict())
    assert restored.updates == 30
    assert all(torch.equal(a, b) for a, b in zip(restored.average, averaged.average))


def test_training_with_weight_averaging_saves_the_averaged_weights(data, tmp_path, monkeypatch):
    """Training itself is unchanged; the saved model is the moving average of its steps."""
    torch.set_num_threads(1)
    train_sentences, _ = data
    built = []
    build = training.build_tagger

    def build_and_keep(*args, **kwargs):
        built.append(build(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(training, "build_tagger", build_and_keep)

    class Snapshots(TrainingListener):
        def __init__(self):
            self.history = []

        def epoch_started(self, epoch, sentences):
            if not self.history:
                self.history.append([p.detach().clone() for p in built[0].model.parameters()])

        def batch_done(self, sentences, loss):
            self.history.append([p.detach().clone() for p in built[-1].model.parameters()])

    config = replace(CONFIG, epochs=1, average_decay=0.95)
    snapshots = Snapshots()
    train(train_sentences, None, config, model_path=str(tmp_path / "avg.pt"),
          listener=snapshots)
    plain = Snapshots()
    train(train_sentences, None, replace(config, average_decay=0.0),
          model_path=str(tmp_path / "plain.pt"), listener=plain)
    last = plain.history[-1]
    assert all(torch.equal(a, b) for a, b in zip(snapshots.history[-1], last))  # same steps
    names = [name for name, _ in built[0].model.named_parameters()]
    saved, saved_plain = weights(tmp_path / "avg.pt"), weights(tmp_path / "plain.pt")
    expected = plain_moving_average(snapshots.history, 0.95)
    for name, wanted, live in zip(names, expected, last):
        assert torch.allclose(saved[name], wanted, atol=1e-5), name
        assert torch.equal(saved_plain[name], live), name
    assert any(not torch.allclose(saved[name], live, atol=1e-4) for name, live in zip(names, last))


def resident_mib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS line")


@pytest.mark.skipif(training._malloc_trim() is None, reason="the C library has no malloc_trim")
def test_release_free_memory_gives_freed_heap_memory_back():
    # 200 MB of heap blocks (each under glibc's mmap threshold), freed below a live block: the
    # heap cannot shrink from its top, so the memory stays resident until trimmed.
    blocks = [bytearray(100_000) for _ in range(2000)]
    above = bytearray(100_000)
    del blocks
    held = resident_mib()
    assert training.release_free_memory()
    assert resident_mib() < held - 150
    del above


def test_trimming_during_training_changes_nothing(data, tmp_path, monkeypatch):
    train_sentences, dev_sentences = data
    calls = []
    release = training.release_free_memory
    monkeypatch.setattr(training, "release_free_memory", lambda: calls.append(1) or release())
    monkeypatch.setattr(training, "TRIM_EVERY_BATCHES", 1)
    train(train_sentences[:200], dev_sentences, CONFIG, model_path=str(tmp_path / "trimmed.pt"))
    batches = len(calls)
    monkeypatch.setattr(training, "TRIM_EVERY_BATCHES", 10**9)
    calls.clear()
    train(train_sentences[:200], dev_sentences, CONFIG, model_path=str(tmp_path / "plain.pt"))
    assert batches > 3 * len(calls) and len(calls) == CONFIG.epochs  # before each dev scoring
    trimmed, plain = weights(tmp_path / "trimmed.pt"), weights(tmp_path / "plain.pt")
    assert all(torch.equal(trimmed[name], plain[name]) for name in plain)


def test_the_fused_sgd_step_equals_plain_sgd():
    """make_optimizer's fused SGD against torch's loop over parameters, momentum included."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 3))
    plain_model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 3))
    plain_model.load_state_dict(model.state_dict())
    config = Config()
    fused = make_optimizer(model, config)
    plain = torch.optim.SGD(plain_model.parameters(), lr=config.lr, momentum=config.momentum)
    assert fused.defaults["fused"]
    initial = model[1].weight.detach().clone()
    for _ in range(4):
        ids = torch.randint(0, 50, (6,))
        for each, optimizer in ((model, fused), (plain_model, plain)):
            optimizer.zero_grad()
            each(ids).pow(2).sum().backward()
            optimizer.step()
    for ours, theirs in zip(model.parameters(), plain_model.parameters()):
        assert torch.allclose(ours, theirs, rtol=0, atol=1e-7)
    assert not torch.allclose(model[1].weight, initial)  # the steps did move the weights
