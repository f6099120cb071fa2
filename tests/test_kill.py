"""A real training process killed at random moments never leaves a damaged model behind."""

import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import DATA, ROOT, TINY, default_sigint

from nerlstm.modelfile import load_model

pytestmark = pytest.mark.slow


def start_training(model, *extra):
    command = [sys.executable, "-m", "nerlstm", "train", str(DATA / "train.txt"), "--dev",
               str(DATA / "dev.txt"), "-m", str(model), *TINY, *extra]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=default_sigint)


def test_kill_9_at_random_moments_never_damages_the_model(tmp_path):
    # Kill moments are drawn within a whole run's duration as timed here, so that they fall
    # inside the training on a fast machine as on a slow one; at most at 70% of it, since a
    # later run can be faster than the timed one (it once ended before a kill at 95%).
    began = time.monotonic()
    assert start_training(tmp_path / "timed.pt").wait(timeout=300) == 0
    duration = time.monotonic() - began
    rng = random.Random(7)
    model = tmp_path / "m.pt"
    for _ in range(4):
        process = start_training(model)
        time.sleep(rng.uniform(0.2, 0.7) * duration)
        assert process.poll() is None, "the training ended before the kill"
        process.kill()
        process.wait()
        if model.exists():
            load_model(str(model))  # loads: never a partial file
    finished = start_training(model)
    assert finished.wait(timeout=300) == 0
    load_model(str(model))
    assert not list(tmp_path.glob(".*.tmp"))  # what the kills left was cleaned up


@pytest.mark.parametrize("number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_then_resume_equals_an_uninterrupted_run(tmp_path, number, code):
    straight = tmp_path / "straight.pt"
    assert start_training(straight).wait(timeout=300) == 0

    rng = random.Random(number)
    model = tmp_path / "m.pt"
    process = start_training(model)
    # The signal lands at a random moment inside epoch 3, 4 or 5 of 6: training is under way
    # (a signal before it began would leave nothing to resume, and is tested apart) and has
    # epochs left. Epoch 2's duration scales the moment, so it holds on any machine's speed.
    last_epoch = rng.choice([2, 3, 4])
    row_times = {}
    for line in process.stderr:
        first = line.split()[:1]
        if first and first[0].isdigit():  # an epoch's row
            row_times[int(first[0])] = time.monotonic()
            if int(first[0]) == last_epoch:
                break
    else:
        pytest.fail(f"the training ended before epoch {last_epoch}'s row")
    time.sleep(rng.uniform(0.0, 0.8) * (row_times[2] - row_times[1]))
    process.send_signal(number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr.decode()
    assert b"Traceback" not in stderr and b"--resume" in stderr
    if model.exists():
        load_model(str(model))
    resumed = start_training(model, "--resume", f"{model}.ckpt")
    assert resumed.wait(timeout=300) == 0
    first = torch.load(straight, weights_only=True)["state_dict"]
    second = torch.load(model, weights_only=True)["state_dict"]
    assert all(torch.equal(first[name], second[name]) for name in first)
