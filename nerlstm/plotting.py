"""Learning curves: a picture of a run's metrics log, and a one-line sparkline."""

from __future__ import annotations

import json
from collections.abc import Sequence

from nerlstm.errors import NerlstmError

_BARS = "▁▂▃▄▅▆▇█"


def read_metrics_log(path: str) -> list[dict]:
    """The rows of a metrics log (one JSON object per epoch)."""
    from nerlstm.conll import open_binary, read_text

    with open_binary(path) as handle:
        start = handle.read(4)
    if start[:2] == b"PK" or start[:1] == b"\x80":  # a zip (torch.save) or a pickle
        raise NerlstmError("this is a model file, not a metrics log: plot the run's "
                           "MODEL.metrics.jsonl", path=path)
    rows = []
    try:
        text = read_text(path)
    except NerlstmError as error:
        if error.line is None:
            raise
        raise NerlstmError("not a metrics log: expected UTF-8 JSON lines, as train writes to "
                           "MODEL.metrics.jsonl", path=path, line=error.line) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or "epoch" not in row or "loss" not in row:
            raise NerlstmError("expected one JSON object per epoch, as train writes to "
                               "MODEL.metrics.jsonl", path=path, line=number)
        rows.append(row)
    if not rows:
        raise NerlstmError("no epochs in the metrics log", path=path)
    return rows


def sparkline(values: Sequence[float]) -> str:
    """Values as a row of bars, lowest to highest of their own range."""
    if not values:
        return ""
    low, high = min(values), max(values)
    spread = (high - low) or 1.0
    return "".join(_BARS[round((value - low) / spread * (len(_BARS) - 1))] for value in values)


def require_matplotlib() -> None:
    """Refuse, before any work, to plot where matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise NerlstmError("plotting needs matplotlib: pip install 'nerlstm[plot]'",
                           exit_code=2) from None


def plot_curves(rows: Sequence[dict], path: str, title: str = "") -> None:
    """Draw training loss and dev precision, recall and F1 per epoch to an image file."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    epochs = [row["epoch"] for row in rows]
    has_dev = all("dev_f1" in row for row in rows)
    figure, axes = pyplot.subplots(1, 2 if has_dev else 1, figsize=(11 if has_dev else 6, 4.2),
                                   squeeze=False)
    loss_axes = axes[0][0]
    loss_axes.plot(epochs, [row["loss"] for row in rows], marker="o", color="tab:gray")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("loss (negative log-likelihood per sentence)")
    loss_axes.set_title("training loss")
    loss_axes.grid(alpha=0.3)
    if has_dev:
        dev_axes = axes[0][1]
        for key, label, color in (("dev_precision", "precision", "tab:blue"),
                                  ("dev_recall", "recall", "tab:orange"),
                                  ("dev_f1", "F1", "tab:green")):
            dev_axes.plot(epochs, [row[key] * 100 for row in rows], marker="o", markersize=3,
                          label=label, color=color, linewidth=2 if key == "dev_f1" else 1)
        best = max(rows, key=lambda row: row["dev_f1"])
        dev_axes.axvline(best["epoch"], color="tab:green", linestyle="--", alpha=0.6)
        dev_axes.annotate(f"best: epoch {best['epoch']}, F1 {best['dev_f1'] * 100:.2f}",
                          (best["epoch"], best["dev_f1"] * 100), textcoords="offset points",
                          xytext=(-10, -28), ha="right", color="tab:green")
        dev_axes.set_xlabel("epoch")
        dev_axes.set_ylabel("dev score (%)")
        dev_axes.set_title("dev entity-level scores")
        dev_axes.legend(loc="lower right")
        dev_axes.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    except OSError as error:
        raise NerlstmError(f"cannot write the picture: {error.strerror}", path=path) from None
    finally:
        pyplot.close(figure)
