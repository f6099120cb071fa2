"""The command line's edges: where each stream goes, what the help says, hints that fit the
command, and refusals that come before any work."""

import json
import re
import sys

import pytest
from conftest import DATA, TINY, run_cli, write

from nerlstm import __version__

COMMANDS = ("train", "eval", "tag", "plot", "info")


def one_error_line(result, code, *fragments):
    """The command failed with ``code`` and said one ``error:`` line holding ``fragments``;
    the line is returned for more checks."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def help_of(command):
    result = run_cli(command, "--help")
    assert result.exit_code == 0, result.output
    return result.stdout


# eval: predictions, scores and counts on their own streams ------------------------------

def test_eval_predictions_to_stdout_put_the_scores_on_stderr(trained_model, tmp_path,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("eval", DATA / "test.txt", "-m", trained_model, "--predictions", "-")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    assert rows and all(len(row) == 3 for row in rows), result.stdout
    assert "entity-level scores (%)" in result.stderr and "micro" in result.stderr
    assert "micro" not in result.stdout
    tokens = len(rows)

    as_json = run_cli("eval", DATA / "test.txt", "-m", trained_model, "--predictions", "-",
                      "--json")
    assert as_json.exit_code == 0, as_json.output
    scores = json.loads(as_json.stderr.strip().splitlines()[-1])
    assert scores["tokens"] == tokens
    assert [line.split() for line in as_json.stdout.splitlines() if line.strip()] == rows
    assert not (tmp_path / "-").exists()


def test_eval_predictions_to_a_file_write_only_that_file(trained_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("eval", DATA / "test.txt", "-m", trained_model, "--predictions",
                     "predictions.txt", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sentences"] == 100
    assert sorted(path.name for path in tmp_path.iterdir()) == ["predictions.txt"]
    lines = (tmp_path / "predictions.txt").read_text(encoding="utf-8").splitlines()
    assert all(len(line.split()) == 3 for line in lines if line.strip())


def test_eval_counts_go_to_stderr_and_the_table_names_its_unit(trained_model):
    result = run_cli("eval", DATA / "test.txt", "-m", trained_model)
    assert result.exit_code == 0, result.output
    counts = re.compile(r"[\d,]+ sentences, [\d,]+ tokens")
    assert counts.search(result.stderr) and not counts.search(result.stdout)
    assert "entity-level scores (%)" in result.stdout


# info: epochs run versus the best one ----------------------------------------------------

def test_info_counts_the_epochs_run_not_the_best_one(tmp_path):
    model = tmp_path / "m.pt"
    trained = run_cli("train", DATA / "train.txt", "--dev", DATA / "dev.txt", "-m", model,
                      *TINY, "--epochs", "20", "--patience", "1")
    assert trained.exit_code == 0, trained.output
    facts = json.loads(run_cli("info", "-m", model, "--json").stdout)
    log = (tmp_path / "m.pt.metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert facts["epochs_run"] == len(log) < 20
    assert facts["best_epoch"] < facts["epochs_run"], "patience stopped nothing: no test"
    best, run = facts["best_epoch"], facts["epochs_run"]
    assert f"best epoch {best} of {run}:" in run_cli("info", "-m", model).stdout


# train --plot without matplotlib ---------------------------------------------------------

def test_train_plot_without_matplotlib_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    model = tmp_path / "m.pt"
    result = run_cli("train", DATA / "train.txt", "-m", model, *TINY, "--epochs", "1",
                     "--plot", tmp_path / "x.png")
    one_error_line(result, 2, "nerlstm[plot]")
    assert sorted(tmp_path.iterdir()) == []


# hints that fit the command --------------------------------------------------------------

def test_plot_of_a_model_file_says_so(trained_model, tmp_path):
    result = run_cli("plot", trained_model, "-o", tmp_path / "x.png")
    line = one_error_line(result, 1, "model file", "not a metrics log")
    assert "--encoding" not in line
    assert not (tmp_path / "x.png").exists()


def test_plot_of_a_latin1_file_does_not_suggest_encoding(tmp_path):
    log = write(tmp_path / "old.txt", "café au lait\n".encode("latin-1"))
    line = one_error_line(run_cli("plot", log, "-o", tmp_path / "x.png"), 1, "old.txt",
                          "not a metrics log")
    assert "--encoding" not in line


def test_text_given_as_a_model_is_not_a_model_file(tmp_path):
    news = write(tmp_path / "news.txt", "Peter Blackburn visited Paris .\n")
    for result in (run_cli("tag", "-m", news, input="Paris\n"),
                   run_cli("eval", DATA / "test.txt", "-m", news)):
        line = one_error_line(result, 1, "news.txt", "not a model file")
        assert "Python objects" not in line


# version and help ------------------------------------------------------------------------

def test_version_and_completion():
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout == f"nerlstm {__version__}\n"
    assert "--install-completion" in run_cli("--help").stdout


USAGE_ARGUMENTS = {"train": "[TRAIN_FILE]", "eval": "DATA_FILE", "tag": "[FILE]...",
                   "plot": "METRICS_LOG", "info": ""}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_in_one_style_without_python_types(command):
    text = help_of(command)
    usage = text.splitlines()[0]
    assert "{" not in usage and "}" not in usage, usage
    assert usage.endswith(f"{command} [OPTIONS] {USAGE_ARGUMENTS[command]}".rstrip()), usage
    for python in ("<list[", "<str>", "<path>", "<int", "<float", "Path]"):
        assert python not in text, python
    description = re.split(r"\n(?:Arguments|Options):\n", text)[0]
    paragraphs = [p.strip() for p in description.split("\n\n") if p.strip()]
    assert paragraphs[-1].startswith("Example: "), description


@pytest.mark.parametrize("command", ("train", "eval", "tag"))
def test_device_defaults_to_auto_everywhere(command):
    text = " ".join(help_of(command).split())
    device = re.search(r"--device \S+ (.*?)(?= -[-\w])", text)
    assert device and "[default: auto]" in device.group(1), text


# threads --------------------------------------------------------------------------------

def test_zero_threads_is_a_usage_error(tmp_path):
    option = run_cli("train", "--print-config", "--threads", "0")
    assert option.exit_code == 2 and "'--threads'" in option.output, option.output
    assert "an integer of at least 1" in option.output
    recipe = write(tmp_path / "r.toml", "threads = 0\n")
    one_error_line(run_cli("train", "--config", recipe, "--print-config"), 2, "r.toml",
                   "an integer of at least 1")


def test_an_even_character_cnn_width_is_a_usage_error(tmp_path):
    result = run_cli("train", DATA / "train.txt", "-m", tmp_path / "m.pt",
                     "--char-cnn-width", "4")
    assert result.exit_code == 2 and "char_cnn_width = 4: expected an odd number" in \
        result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "m.pt").exists()
