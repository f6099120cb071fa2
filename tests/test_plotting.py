import json
import sys

import pytest
from conftest import run_cli, write

from nerlstm.errors import NerlstmError
from nerlstm.plotting import plot_curves, read_metrics_log, sparkline

ROWS = [{"epoch": n, "loss": 5.0 / n, "dev_precision": 0.5 + n / 20, "dev_recall": 0.4 + n / 20,
         "dev_f1": 0.45 + n / 20} for n in range(1, 6)]


def test_sparkline_spans_the_range():
    assert sparkline([0.1, 0.5, 0.9]) == "▁▅█"
    assert sparkline([0.3, 0.3]) == "▁▁"
    assert sparkline([]) == ""


def test_plot_from_a_metrics_log_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    log = write(tmp_path / "m.jsonl", "\n".join(json.dumps(row) for row in ROWS) + "\n")
    picture = tmp_path / "curves.png"
    result = run_cli("plot", log, "-o", picture)
    assert result.exit_code == 0, result.output
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    with pytest.raises(NerlstmError, match=r"pip install 'nerlstm\[plot\]'"):
        plot_curves(ROWS, str(tmp_path / "x.png"))


def test_a_bad_metrics_log_names_the_line(tmp_path):
    log = write(tmp_path / "m.jsonl", json.dumps(ROWS[0]) + "\nnot json\n")
    with pytest.raises(NerlstmError, match="m.jsonl:2:"):
        read_metrics_log(str(log))
