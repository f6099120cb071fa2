"""Data-parallel training on the local cores: 2 processes x 1 thread against 1 process x 2
threads, and the all-reduce each step costs, from which docs/parallel.md models the
throughput of more workers.

    .venv/bin/python benchmarks/bench_distributed.py [--sentences 3000] [--epochs 3]

Trains the default config on the first --sentences sentences of CoNLL-2003's training file
(no dev: the rows time training alone), once as one process on two threads and once under
torchrun as two ranks on one thread each; the figure is the median of the epochs after the
first. A rank's row counts its own sentences: the run's rate is the ranks' sum (each takes
an equal share of the batches). Then two ranks time `all_reduce` of a tensor of the
model's trainable size (the gradient DDP sums each step) and of one number (the latency).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRAIN = ROOT.parent / "shared" / "data" / "conll2003" / "train.txt"


def first_sentences(source: Path, count: int, target: Path) -> None:
    """The lines of ``source`` up to the end of its ``count``-th sentence."""
    lines, seen, inside = [], 0, False
    for line in source.read_text(encoding="utf-8").splitlines(keepends=True):
        lines.append(line)
        token_line = bool(line.strip()) and not line.startswith("-DOCSTART-")
        if inside and not token_line:
            seen += 1
            if seen == count:
                break
        inside = token_line
    target.write_text("".join(lines), encoding="utf-8")


def epoch_rate(model: Path, ranks: int) -> dict:
    """The run's sentences/s (median of the epochs after the first) and its steps' seconds."""
    rows = [json.loads(line) for line in
            Path(f"{model}.metrics.jsonl").read_text(encoding="utf-8").splitlines()][1:]
    return {"sentences_per_s": ranks * statistics.median(r["sentences_per_second"] for r in rows),
            "epoch_train_seconds": statistics.median(r["train_seconds"] for r in rows)}


def train(data: Path, model: Path, epochs: int, ranks: int) -> dict:
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo"}
    common = ["-m", "nerlstm", "train", str(data), "-m", str(model), "--epochs", str(epochs)]
    if ranks == 1:
        command = [sys.executable, *common, "--threads", "2"]
    else:
        env["OMP_NUM_THREADS"] = "1"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node", str(ranks), *common, "--threads", "1"]
    subprocess.run(command, cwd=ROOT, env=env, check=True, stderr=subprocess.DEVNULL)
    return epoch_rate(model, ranks)


def all_reduce_times(numel: int, repeats: int = 30) -> None:
    """In each rank under torchrun: the median seconds of all_reduce over ``numel`` float32
    numbers and over one; rank 0 prints them."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    found = {}
    for name, size in (("gradient", numel), ("one_number", 1)):
        tensor = torch.ones(size)
        for _ in range(3):
            dist.all_reduce(tensor)
        times = []
        for _ in range(repeats):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(tensor)
            times.append(time.perf_counter() - start)
        found[f"all_reduce_{name}_s"] = statistics.median(times)
    if dist.get_rank() == 0:
        print(json.dumps(found))
    dist.barrier()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default=str(DEFAULT_TRAIN))
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--all-reduce", type=int, metavar="NUMEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.all_reduce:
        all_reduce_times(args.all_reduce)
        return
    from nerlstm.batching import context_batches, context_ids
    from nerlstm.config import Config
    from nerlstm.conll import read_tagged
    from nerlstm.modelfile import load_model

    results: dict = {"cores": os.cpu_count(), "sentences": args.sentences}
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "train.txt"
        first_sentences(Path(args.train), args.sentences, data)
        one = train(data, Path(folder) / "one.pt", args.epochs, 1)
        two = train(data, Path(folder) / "two.pt", args.epochs, 2)
        tagger, _ = load_model(str(Path(folder) / "one.pt"))
        numel = sum(p.numel() for p in tagger.model.parameters() if p.requires_grad)
        sentences = read_tagged(str(data)).sentences
        batches = len(list(context_batches(context_ids([s.document for s in sentences]),
                                           Config().batch_size)))
    results["one_process_two_threads"] = one
    results["two_processes_one_thread"] = two
    results["speedup"] = two["sentences_per_s"] / one["sentences_per_s"]
    results["gradient_numbers"] = numel
    results["gradient_mib"] = numel * 4 / 2**20
    results["batches_per_epoch"] = batches
    one["step_seconds"] = one["epoch_train_seconds"] / batches
    two["step_seconds"] = two["epoch_train_seconds"] / (batches // 2)  # a rank's share
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", __file__, "--all-reduce", str(numel)],
                          cwd=ROOT, env={**os.environ, "GLOO_SOCKET_IFNAME": "lo",
                                         "OMP_NUM_THREADS": "1"},
                          check=True, capture_output=True, text=True)
    results.update(json.loads(done.stdout.strip().splitlines()[-1]))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
