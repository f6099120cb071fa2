"""Threads from the free cores: the counters read, the arithmetic, and the whole commands
beside a busy process (slow)."""

import json
import os
import statistics
import subprocess
import sys
import time

import pytest
from conftest import DATA

from nerlstm import runtime
from nerlstm.runtime import CpuSample, ThreadGovernor, cores_busy_elsewhere, free_threads


def sample(busy: int, total: int, own: int, when: float, cpus: int = 2) -> CpuSample:
    return CpuSample(busy=busy, total=total, own=own, cpus=cpus, when=when)


def test_another_process_on_one_of_two_cores_leaves_one_thread(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    before = sample(busy=0, total=0, own=0, when=0.0)
    # one second, two CPUs at 100 ticks each: the other process took 100, this one 90
    after = sample(busy=190, total=200, own=90, when=1.0)
    assert cores_busy_elsewhere(before, after) == pytest.approx(1.0)
    assert free_threads(before, after, most=2) == 1
    idle_but_us = sample(busy=150, total=200, own=150, when=1.0)
    assert free_threads(before, idle_but_us, most=2) == 2
    assert free_threads(before, idle_but_us, most=1) == 1
    everything_busy = sample(busy=200, total=200, own=0, when=1.0)
    assert free_threads(before, everything_busy, most=2) == 1  # never fewer than one


def test_too_short_or_missing_samples_decide_nothing():
    before = sample(busy=0, total=0, own=0, when=0.0)
    assert free_threads(before, sample(busy=2, total=2, own=0, when=0.01), most=2) is None
    assert free_threads(None, before, most=2) is None


def test_the_governor_sets_threads_only_when_they_change(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    samples = iter([sample(190, 200, 90, 1.0), sample(380, 400, 180, 2.0),
                    sample(480, 600, 280, 3.0)])
    monkeypatch.setattr(runtime, "cpu_sample", lambda: next(samples))
    applied = []
    governor = ThreadGovernor(2, applied.append, since=sample(0, 0, 0, 0.0))
    assert [governor.look(), governor.look(), governor.look()] == [1, 1, 2]
    assert applied == [1, 2]


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="no /proc/stat (not Linux)")
def test_the_counters_are_read_from_the_kernel():
    first = runtime.cpu_sample()
    sum(range(2_000_000))  # keep this process busy a little
    second = runtime.cpu_sample()
    assert first is not None and second is not None
    assert second.total >= first.total and second.own >= first.own
    assert first.cpus == len([line for line in open("/proc/stat") if line[:3] == "cpu"
                              and line[3:4].isdigit()])


def rates_beside(competitor: bool, extra: list[str], folder) -> tuple[float, float]:
    """Training sentences/s (median of epochs 2-4) and whole-process tagging tokens/s."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")}
    model = folder / "m.pt"
    nerlstm = [sys.executable, "-m", "nerlstm"]
    subprocess.run([*nerlstm, "train", DATA / "train.txt", "-m", model, "--epochs", "4",
                    "--hidden", "64", *extra], check=True, env=env, stderr=subprocess.DEVNULL)
    rows = [json.loads(line) for line in (folder / "m.pt.metrics.jsonl").read_text().splitlines()]
    training = statistics.median(row["sentences_per_second"] for row in rows[1:])
    text = (DATA / "train.txt").read_bytes() * 4
    start = time.perf_counter()
    subprocess.run([*nerlstm, "tag", "-m", model, "--input", "conll", *extra], input=text,
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tokens = sum(1 for line in text.splitlines() if line.strip())
    return training, tokens / (time.perf_counter() - start)


@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores: one for a competitor")
def test_default_threads_keep_pace_with_one_thread_beside_a_busy_process(tmp_path):
    """With another process keeping a core busy, the default threads train and tag at least
    0.8x as fast as --threads 1 (without counting free cores, training ran tens of times
    slower). A ratio of runs taking turns, never a time."""
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        runs = {"default": [], "one": []}
        for _ in range(3):
            runs["default"].append(rates_beside(True, [], tmp_path))
            runs["one"].append(rates_beside(True, ["--threads", "1"], tmp_path))
    finally:
        competitor.kill()
        competitor.wait()
    for index, what in enumerate(("training", "tagging")):
        default = statistics.median(rates[index] for rates in runs["default"])
        one = statistics.median(rates[index] for rates in runs["one"])
        assert default >= 0.8 * one, (what, runs)
