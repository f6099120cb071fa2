"""The commands as a user runs them: train -> eval -> tag on data/, and every error path."""

import json

import pytest
import torch
from conftest import DATA, TINY, run_cli, write
from seqeval.metrics import f1_score

from nerlstm.conll import read_conll


def assert_user_error(result, code, *fragments):
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_every_command_has_help():
    for command in ("train", "eval", "tag"):
        result = run_cli(command, "--help")
        assert result.exit_code == 0 and "Example:" in result.output


def test_train_writes_model_and_metrics_log(trained_model):
    log = trained_model.parent / (trained_model.name + ".metrics.jsonl")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(1, len(rows) + 1))
    assert {"loss", "dev_precision", "dev_recall", "dev_f1", "seconds", "best"} <= set(rows[0])
    assert max(row["dev_f1"] for row in rows) > 0.3


def test_eval_json_matches_seqeval_on_written_predictions(trained_model, tmp_path):
    predictions = tmp_path / "predictions.txt"
    result = run_cli("eval", DATA / "test.txt", "-m", trained_model, "--json",
                     "--predictions", predictions)
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert set(scores) >= {"precision", "recall", "f1", "per_type", "sentences", "tokens"}
    assert set(scores["per_type"]) == {"LOC", "MISC", "ORG", "PER"}
    written = read_conll(str(predictions), tag_column=1)
    guessed_columns = read_conll(str(predictions), tag_column=2)
    gold = [s.tags for s in written]
    guessed = [s.tags for s in guessed_columns]
    assert scores["f1"] == pytest.approx(f1_score(gold, guessed), abs=1e-12)
    assert scores["sentences"] == len(written) == len(read_conll(str(DATA / "test.txt")))


def test_eval_table_on_stdout(trained_model):
    result = run_cli("eval", DATA / "test.txt", "-m", trained_model)
    assert result.exit_code == 0
    for word in ("precision", "recall", "PER", "LOC", "micro", "macro"):
        assert word in result.stdout


def test_tag_writes_one_line_per_input_line(trained_model):
    text = "Peter Blackburn visited Paris .\n\nThe European Commission said so .\n"
    result = run_cli("tag", "-m", trained_model, input=text)
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    assert lines[0].replace("[", "").replace("]", "").split()[-2:] == ["Paris", "."]


def test_same_seed_gives_the_same_model(trained_model, tmp_path):
    again = tmp_path / "again.pt"
    result = run_cli("train", DATA / "train.txt", "--dev", DATA / "dev.txt", "-m", again, *TINY)
    assert result.exit_code == 0
    first = (trained_model.parent / (trained_model.name + ".metrics.jsonl")).read_text()
    second = (tmp_path / "again.pt.metrics.jsonl").read_text()

    def without_timings(text):
        return [{k: v for k, v in json.loads(line).items() if "second" not in k}
                for line in text.splitlines()]

    assert without_timings(first) == without_timings(second)
    weights = torch.load(trained_model, weights_only=True)["state_dict"]
    again_weights = torch.load(again, weights_only=True)["state_dict"]
    assert all(torch.equal(weights[name], again_weights[name]) for name in weights)


def test_train_without_dev_keeps_the_last_epoch(tmp_path):
    model = tmp_path / "m.pt"
    result = run_cli("train", DATA / "dev.txt", "-m", model, *TINY[:-6], "--epochs", "2",
                     "--threads", "1")
    assert result.exit_code == 0, result.output
    assert model.exists()


@pytest.mark.parametrize("options, doc_context, char_encoder", [
    ((), True, "cnn"),
    (("--sentence-context", "--char-encoder", "lstm"), False, "lstm"),
])
def test_context_and_character_encoder_options(tmp_path, options, doc_context, char_encoder):
    model = tmp_path / "m.pt"
    result = run_cli("train", DATA / "train.txt", "--dev", DATA / "dev.txt", "-m", model,
                     *TINY[:-6], "--epochs", "1", "--threads", "1", *options)
    assert result.exit_code == 0, result.output
    config = json.loads(run_cli("info", "-m", model, "--json").stdout)["config"]
    assert (config["doc_context"], config["char_encoder"]) == (doc_context, char_encoder)
    scores = json.loads(run_cli("eval", DATA / "test.txt", "-m", model, "--json").stdout)
    assert 0 <= scores["f1"] <= 1 and scores["sentences"] == 100


@pytest.mark.parametrize("content, fragments", [
    ("EU B-ORG\nsays O x\n", ["bad.txt:2:", "expected 2 columns"]),
    ("EU Q-ORG\n", ["bad.txt:1:", "fits no scheme"]),
    ("\n\n", ["bad.txt:", "no sentences"]),
    (b"EU B-ORG\n\xff\xfe O\n", ["bad.txt:2:", "byte 0xff", "--encoding"]),
])
def test_bad_training_data_is_one_error_line(tmp_path, content, fragments):
    bad = write(tmp_path / "bad.txt", content)
    result = run_cli("train", bad, "-m", tmp_path / "m.pt")
    assert_user_error(result, 1, *fragments)


def test_missing_files_and_bad_models(tmp_path, trained_model):
    assert_user_error(run_cli("train", tmp_path / "nope.txt", "-m", tmp_path / "m.pt"), 1,
                      "nope.txt", "no such file")
    assert_user_error(run_cli("eval", DATA / "test.txt", "-m", tmp_path / "nope.pt"), 1,
                      "no such model file")
    foreign = write(tmp_path / "foreign.pt", "not a model")
    assert_user_error(run_cli("eval", DATA / "test.txt", "-m", foreign), 1, "foreign.pt")
    assert_user_error(run_cli("tag", "-m", foreign, input="x\n"), 1, "foreign.pt")
    assert_user_error(run_cli("train", DATA / "train.txt", "-m", tmp_path), 1, "directory")
    assert_user_error(run_cli("eval", tmp_path / "nope.txt", "-m", trained_model), 1, "no such file")


def test_usage_errors_exit_2(tmp_path):
    result = run_cli("train", DATA / "train.txt")
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = run_cli("train", DATA / "train.txt", "-m", tmp_path / "m.pt", "--optimizer", "rmsprop")
    assert result.exit_code == 2


def test_info_tells_how_the_model_was_made(trained_model):
    result = run_cli("info", "-m", trained_model, "--json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["entity_types"] == ["LOC", "MISC", "ORG", "PER"]
    assert facts["train"]["sentences"] == 400 and facts["config"]["hidden"] == 32
    assert facts["best_epoch"] >= 1 and 0 < facts["best_dev"]["f1"] <= 1
    assert facts["parameters"] > 1000 and facts["file_bytes"] == trained_model.stat().st_size
    text = run_cli("info", "-m", trained_model).stdout
    assert "best epoch" in text and "train:" in text


def test_eval_errors_in_json_and_tables(trained_model):
    result = run_cli("eval", DATA / "test.txt", "-m", trained_model, "--errors", "--json")
    assert result.exit_code == 0, result.output
    errors = json.loads(result.stdout)["errors"]
    assert set(errors) >= {"kinds", "confusion", "frequent", "token_accuracy", "seen", "unseen"}
    gold_total = sum(sum(row.values()) for kind, row in errors["confusion"].items() if kind != "none")
    assert gold_total == sum(json.loads(result.stdout)["per_type"][k]["support"]
                             for k in json.loads(result.stdout)["per_type"])
    tables = run_cli("eval", DATA / "test.txt", "-m", trained_model, "--errors").stdout
    assert "most frequent wrong spans" in tables and "seen" in tables


def test_a_resumed_training_reports_the_whole_run(tmp_path, sigint_raises):
    import os
    import signal

    from nerlstm.config import Config
    from nerlstm.conll import read_tagged
    from nerlstm.training import TrainingListener, train

    class StopInSecondEpoch(TrainingListener):
        def epoch_started(self, epoch, sentences):
            self.epoch, self.sent = epoch, False

        def batch_done(self, sentences, loss):
            if self.epoch == 2 and not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGINT)

    train_data, dev_data = read_tagged(str(DATA / "train.txt")), read_tagged(str(DATA / "dev.txt"))
    model = tmp_path / "m.pt"
    config = Config(word_dim=16, char_dim=8, char_hidden=8, hidden=16, epochs=3, seed=5, lr=0.1)
    stopped = train(train_data.sentences, dev_data.sentences, config, model_path=str(model),
                    listener=StopInSecondEpoch(),
                    data_summary={"train": train_data.describe(), "dev": dev_data.describe()})
    assert stopped.stopped_by_signal == signal.SIGINT

    result = run_cli("train", DATA / "train.txt", "--dev", DATA / "dev.txt", "-m", model,
                     "--resume", f"{model}.ckpt")
    assert result.exit_code == 0, result.output
    summary = next(line for line in result.output.splitlines() if line.startswith("best epoch"))
    rows = [json.loads(line) for line in open(f"{model}.metrics.jsonl", encoding="utf-8")]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    best = max(rows, key=lambda row: row["dev_f1"])["epoch"]  # first of equals, as training keeps
    assert summary.startswith(f"best epoch {best} of 3:"), summary
    assert len(summary.split("by epoch ")[1].split()[0]) == 3  # a bar for each epoch
    assert "since resuming" in result.output
