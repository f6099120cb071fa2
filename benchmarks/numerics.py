"""Training numerics across CPUs and math libraries: the same steps, compared number by number.

`python benchmarks/numerics.py --out a.json` trains the default model for --steps batches
from its seed on one thread, as `nerlstm train` would, and writes what torch reports about
its arithmetic (float32 matmul precision, the math libraries and their instruction sets) with
the loss and gradient norm of every step and a digest of the weights after the first and the
last step. Run it on two machines (or under two settings of the libraries, e.g.
ONEDNN_MAX_CPU_ISA=AVX2 or MKL_CBWR=AVX2), then `--compare a.json b.json` says where the two
runs part.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from nerlstm.torch_compat import numerics_environment

DEFAULT_TRAIN = Path(__file__).resolve().parent.parent.parent / "shared/data/conll2003/train.txt"
def digest(model) -> str:
    hasher = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        hasher.update(name.encode())
        hasher.update(tensor.detach().contiguous().numpy().tobytes())
    return hasher.hexdigest()[:16]


def run_steps(train_path: str, steps: int) -> dict:
    import torch
    from bench import training_setup  # this script's folder is first on sys.path

    model, optimizer, data, rng = training_setup(train_path, 1, "cpu")
    order = data.epoch_order(rng)[:steps]
    losses, gradient_norms, digests = [], [], {}
    for step, indices in enumerate(order, start=1):
        loss = model.loss(data.batch(indices, rng))
        optimizer.zero_grad()
        (loss / len(indices)).backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), data.config.clip)
        optimizer.step()
        losses.append(loss.item())
        gradient_norms.append(float(norm))
        if step in (1, len(order)):
            digests[str(step)] = digest(model)
    return {"environment": numerics_environment(), "steps": len(order), "losses": losses,
            "gradient_norms": gradient_norms, "weights": digests}


def compare(first: dict, second: dict) -> list[str]:
    """Lines saying how the two runs' settings and numbers differ."""
    lines = []
    for key in sorted(set(first["environment"]) | set(second["environment"])):
        a, b = first["environment"].get(key), second["environment"].get(key)
        if a != b:
            lines.append(f"{key}: {a} | {b}")
    steps = min(first["steps"], second["steps"])
    parted = next((step + 1 for step in range(steps)
                   if first["losses"][step] != second["losses"][step]), None)
    lines.append(f"losses identical for {steps} steps" if parted is None
                 else f"first differing loss: step {parted}")
    for step in sorted({1, steps}):
        index = step - 1
        loss_gap = abs(first["losses"][index] - second["losses"][index]) / abs(
            first["losses"][index])
        norm_gap = abs(first["gradient_norms"][index] - second["gradient_norms"][index]) / abs(
            first["gradient_norms"][index])
        same = first["weights"].get(str(step)) == second["weights"].get(str(step))
        lines.append(f"step {step}: loss relative difference {loss_gap:.2e}, gradient norm "
                     f"{norm_gap:.2e}, weights {'identical' if same else 'differ'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default=str(DEFAULT_TRAIN), help="CoNLL training file")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", help="write the run's JSON here (default: stdout)")
    parser.add_argument("--compare", nargs=2, metavar="JSON", help="compare two runs")
    args = parser.parse_args()
    if args.compare:
        runs = [json.loads(Path(path).read_text()) for path in args.compare]
        print("\n".join(compare(*runs)))
        return
    if not Path(args.train).is_file():
        parser.error(f"{args.train}: no such file (give --train)")
    result = json.dumps(run_steps(args.train, args.steps), indent=1)
    if args.out:
        Path(args.out).write_text(result + "\n")
    else:
        print(result)


if __name__ == "__main__":
    main()
