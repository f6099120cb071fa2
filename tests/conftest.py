"""Shared fixtures: paths, the CLI runner, and one small model trained on the bundled data."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerlstm.cli import app
from nerlstm.conll import Sentence

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared" / "data"

# Four tagged sentences for unit tests of batching and the model.
SENTENCES = [
    Sentence(["Peter", "Blackburn", "visited", "Paris", "."], ["B-PER", "I-PER", "O", "B-LOC", "O"]),
    Sentence(["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"]),
    Sentence(["Paris"], ["B-LOC"]),
    Sentence(["The", "EU", "said", "Peter", "'s", "call", "to", "Paris", "failed", "."],
             ["O", "B-ORG", "O", "B-PER", "O", "O", "O", "B-LOC", "O", "O"]),
]

needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/data (the benchmark corpora) is not beside the project")


def run_cli(*args: str, input: str | bytes | None = None):
    """Run nerlstm in-process as a user would; returns click's Result."""
    return CliRunner().invoke(app, [str(arg) for arg in args], input=input)


def default_sigint() -> None:
    """For Popen's preexec_fn: a process started from a background job inherits SIGINT
    ignored (and Python then keeps it ignored); Ctrl-C tests need it to arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def sigint_raises():
    """This process turns SIGINT into KeyboardInterrupt while the test runs, however it was
    started."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


# Small and quick, but big enough to learn the bundled sample.
TINY = ["--word-dim", "32", "--char-dim", "16", "--char-hidden", "16", "--hidden", "32",
        "--epochs", "6", "--batch-size", "8", "--seed", "3", "--threads", "1"]


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> Path:
    """A model trained through the CLI on data/train.txt with data/dev.txt."""
    model = tmp_path_factory.mktemp("model") / "model.pt"
    result = run_cli("train", DATA / "train.txt", "--dev", DATA / "dev.txt", "-m", model, *TINY)
    assert result.exit_code == 0, result.output
    return model


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


os.environ.setdefault("COLUMNS", "120")  # rich tables in CLI output: wide enough to read
