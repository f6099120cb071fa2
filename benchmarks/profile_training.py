"""Where a training step's time goes at the default config: `make profile`.

Times each phase of a step apart (building the batch, the character encoder's forward pass,
the rest of the emissions, torchcrf's loss, the backward pass, clipping and the optimizer
step) over batches drawn as training draws them, then lists torch.profiler's operations.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from bench import training_setup  # this script's folder is first on sys.path
from torch.profiler import ProfilerActivity, profile

from nerlstm.crf import negative_log_likelihood

DEFAULT_TRAIN = Path(__file__).resolve().parent.parent.parent / "shared/data/conll2003/train.txt"
PHASES = ("batch", "chars", "emissions", "crf", "backward", "step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default=str(DEFAULT_TRAIN), help="CoNLL training file")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=30, help="batches before timing")
    parser.add_argument("--batches", type=int, default=200, help="batches timed by phase")
    parser.add_argument("--profiled", type=int, default=60, help="batches under torch.profiler")
    args = parser.parse_args()
    if not Path(args.train).is_file():
        parser.error(f"{args.train}: no such file (give --train)")

    model, optimizer, data, rng = training_setup(args.train, args.threads, "cpu")
    order = data.epoch_order(rng)
    spent = dict.fromkeys(PHASES, 0.0)

    def step(indices: list[int], timed: bool) -> None:
        clock = [time.perf_counter()]
        batch = data.batch(indices, rng)
        clock.append(time.perf_counter())
        if timed:  # the character encoder once more, alone, to tell its share
            model.char_encoder(batch.char_ids, batch.char_lengths)
        clock.append(time.perf_counter())
        emissions = model.emissions(batch)
        clock.append(time.perf_counter())
        loss = negative_log_likelihood(model.crf, emissions, batch.tag_ids, batch.mask)
        clock.append(time.perf_counter())
        optimizer.zero_grad()
        (loss / len(indices)).backward()
        clock.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(model.parameters(), data.config.clip)
        optimizer.step()
        clock.append(time.perf_counter())
        if timed:
            seconds = [later - earlier for earlier, later in zip(clock, clock[1:])]
            seconds[2] -= seconds[1]  # emissions ran the character encoder too
            for name, value in zip(PHASES, seconds):
                spent[name] += value

    for indices in order[:args.warmup]:
        step(indices, False)
    timed_batches = order[args.warmup:args.warmup + args.batches]
    for indices in timed_batches:
        step(indices, True)
    total = sum(spent.values())
    count = sum(len(indices) for indices in timed_batches)
    print(f"{len(timed_batches)} batches, {count} sentences, {count / total:.0f} sentences/s "
          f"({args.threads} thread(s), torch {torch.__version__})")
    for name, value in spent.items():
        print(f"  {name:10s} {value:7.2f} s {100 * value / total:6.1f}%")
    start = args.warmup + args.batches
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        for indices in order[start:start + args.profiled]:
            step(indices, False)
    print(profiled.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
