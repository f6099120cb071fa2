"""Data-parallel training: torchrun with two processes on loopback (gloo)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA, ROOT, TINY, default_sigint, run_cli

from nerlstm.distributed import Shard, from_environment
from nerlstm.modelfile import load_model


def batches_of(count):
    def draw(rng):
        order = [[n] for n in range(count)]
        rng.shuffle(order)
        return order
    return draw


def test_every_rank_takes_its_own_share_of_the_same_order():
    shares = [Shard(rank, 3, rank, 3).epoch_order(batches_of(11), 5, 2) for rank in range(3)]
    assert [len(share) for share in shares] == [3, 3, 3]  # 11 // 3 steps, two left out
    taken = [batch[0] for share in shares for batch in share]
    assert len(set(taken)) == 9
    again = Shard(1, 3, 1, 3).epoch_order(batches_of(11), 5, 2)
    assert again == shares[1]  # drawn from the seed and the epoch alone
    assert Shard(1, 3, 1, 3).epoch_order(batches_of(11), 5, 3) != shares[1]


def test_too_few_batches_for_the_ranks_is_a_usage_error():
    with pytest.raises(Exception, match="too few for 4 processes"):
        Shard(0, 4, 0, 4).epoch_order(batches_of(3), 1, 1)


def test_the_environment_says_whether_this_is_a_rank(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert from_environment() is None
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert from_environment() == Shard(3, 4, 1, 2)


def torchrun(model, *extra, epochs="6", **popen):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "nerlstm", "train", str(DATA / "train.txt"),
               "--dev", str(DATA / "dev.txt"), "-m", str(model), *TINY, "--epochs", epochs,
               *extra]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=default_sigint, **popen)


def test_two_processes_train_a_model_that_eval_scores(tmp_path):
    model = tmp_path / "m.pt"
    process = torchrun(model)
    _, stderr = process.communicate(timeout=300)
    text = stderr.decode()
    assert process.returncode == 0, text
    assert text.count("best epoch") == 1  # rank 0 alone reports
    assert len((tmp_path / "m.pt.metrics.jsonl").read_text().splitlines()) == 6
    assert not (tmp_path / "m.pt.ckpt").exists()
    result = run_cli("eval", DATA / "test.txt", "-m", model)
    assert result.exit_code == 0, result.output
    assert "micro" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_every_rank_and_resume_goes_on(tmp_path, number):
    model = tmp_path / "m.pt"
    process = torchrun(model, epochs="30", start_new_session=True)
    for line in process.stderr:
        if line.split()[:1] == [b"2"]:  # epoch 2's row: training is under way
            break
    # SIGINT as a terminal sends it, to every process; SIGTERM as a scheduler, to torchrun
    if number == signal.SIGINT:
        os.killpg(process.pid, number)
    else:
        process.send_signal(number)
    _, stderr = process.communicate(timeout=120)
    text = stderr.decode()
    assert "interrupted: the best model so far is kept" in text, text
    assert "terminate called" not in text
    load_model(str(model))
    resumed = torchrun(model, "--resume", f"{model}.ckpt", epochs="30")
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr.decode()
    assert b"best epoch" in stderr
    assert not (tmp_path / "m.pt.ckpt").exists()


def ranks_of(launcher: int) -> dict[int, int]:
    """The processes torchrun started, by their RANK."""
    ranks = {}
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            variables = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        ranks.update({int(item[5:]): int(entry.name) for item in variables
                      if parent == launcher and item.startswith(b"RANK=")})
    return ranks


@pytest.mark.slow
@pytest.mark.parametrize("victim", [0, 1])
def test_a_rank_killed_ends_every_rank_and_the_best_model_is_kept(tmp_path, victim):
    model = tmp_path / "m.pt"
    process = torchrun(model, epochs="30")
    for line in process.stderr:
        if line.split()[:1] == [b"2"]:  # epoch 2's row: a best model is written
            break
    ranks = ranks_of(process.pid)
    assert sorted(ranks) == [0, 1]
    os.kill(ranks[victim], signal.SIGKILL)  # as the OOM killer does
    _, stderr = process.communicate(timeout=60)  # torchrun ends the other rank
    assert process.returncode == 1
    assert "Signal 9 (SIGKILL) received by PID" in stderr.decode()
    assert not any(Path(f"/proc/{pid}").exists() for pid in ranks.values())
    load_model(str(model))  # whole: rank 0 writes it atomically
    assert (tmp_path / "m.pt.ckpt").exists()
