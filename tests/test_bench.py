"""`make bench`'s script: its table against the targets, and a whole run on the bundled data."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
from conftest import DATA, ROOT

spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def results(threads: int = 2, device: str = "cpu", data: str = "conll2003",
            config: str = "default") -> dict:
    return {"machine": {"cores": 2, "threads": threads, "torch": "2", "python": "3",
                        "device": device},
            "data": data, "config": config, "train_sentences_per_s": 650.0,
            "train_peak_rss_mib": 1100.0, "tag_tokens_per_s": 40_000.0,
            "cold_start_ratio": 1.2, "help_s": 0.1, "model_mib": 11.7}


def target_column(table: str) -> dict[str, str]:
    """Each figure's target cell ("" where none) from the printed table."""
    column = {}
    for line in table.splitlines():
        for key, label, _ in bench.ROWS:
            if line.startswith(label):
                found = [line.index(sense) for sense in (">=", "<=") if sense in line]
                column[key] = line[found[0]:] if found else ""
    return column


def test_the_table_says_which_targets_are_met(capsys):
    bench.print_table(results(), {})
    column = target_column(capsys.readouterr().out)
    assert column["train_sentences_per_s"] == ">= 600 met"
    assert column["train_peak_rss_mib"] == "<= 1,024 missed"
    assert column["tag_tokens_per_s"] == ">= 55,000 missed"
    assert column["cold_start_ratio"] == "<= 1.50 met"
    assert column["help_s"] == "<= 0.30 met"
    assert column["model_mib"] == ""


@pytest.mark.parametrize("setting", [{"threads": 1}, {"device": "cuda"}, {"data": "wnut17"}])
def test_targets_are_left_out_where_they_do_not_apply(setting, capsys):
    bench.print_table(results(**setting), {})
    table = capsys.readouterr().out
    assert " met" not in table and "missed" not in table


def test_a_recipe_is_named_and_its_targets_marked_as_the_defaults(capsys):
    bench.print_table(results(config="fast.toml"), {})
    table = capsys.readouterr().out
    assert "config: fast.toml" in table
    assert "(the targets are for the default config)" in table


def test_a_recipe_sets_the_config_the_training_figures_use(tmp_path):
    recipe = tmp_path / "fast.toml"
    recipe.write_text("hidden = 64\nbatch_size = 8\nthreads = 1\n")
    config = bench.recipe_config(str(recipe))
    assert (config.hidden, config.batch_size, config.char_encoder) == (64, 8, "cnn")
    assert bench.recipe_config(None) == type(config)()


@pytest.mark.slow
def test_make_bench_runs_on_the_bundled_data(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--data", str(DATA), "--runs", "2",
         "--warmup-batches", "2", "--out", str(out), "--baseline", str(tmp_path / "none")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert len(figures["train_epochs_sentences_per_s"]) == 2
    assert figures["train_sentences_per_s"] == pytest.approx(
        sum(figures["train_epochs_sentences_per_s"]) / 2)
    assert figures["tag_tokens_per_s"] > 0 and figures["cold_start_ratio"] > 0
    assert "training, sentences/s" in done.stdout and "missed" not in done.stdout
