"""Bad input never gives a traceback: a correct result, or one `error:` line and exit 1."""

import os

import pytest
from conftest import DATA, run_cli, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nerlstm.conll import read_tagged
from nerlstm.errors import NerlstmError

GOOD = "EU B-ORG\nrejects O\nGerman B-MISC\n\nPeter B-PER\nBlackburn I-PER\n"

BAD_TAGGED = {
    "empty file": (b"", "no sentences"),
    "only blank lines": (b"\n \n\t\n\n", "no sentences"),
    "only -DOCSTART-": (b"-DOCSTART- -X- O O\n\n-DOCSTART- -X- O O\n", "no sentences"),
    "single column": (b"EU\nrejects\n", "same column"),
    "mixed column counts": (b"EU NNP B-ORG\nrejects O\n", ":2: expected 3 columns"),
    "tag fitting no scheme": (b"EU B-ORG\nrejects X-Y\n", ":2: tag 'X-Y' fits no scheme"),
    "bare types (IO scheme)": (b"EU ORG\nrejects O\n", "IO scheme"),
    "undecodable byte": (b"EU B-ORG\n\nEspa\xf1a B-LOC\n", ":3: byte 0xf1"),
    "random binary": (bytes(range(256)) * 4, "byte 0x80"),
}

ACCEPTED_TAGGED = {
    "NUL bytes in a token": b"E\x00U B-ORG\nrejects O\n",
    "CRLF with a BOM": b"\xef\xbb\xbfEU B-ORG\r\nrejects O\r\n\r\nParis B-LOC\r\n",
    "no final newline": b"EU B-ORG\nrejects O",
    "tabs and spaces mixed": b"EU \t B-ORG\nrejects\tO\n",
    "-DOCSTART- with no blank line after": b"-DOCSTART- -X- O O\nEU B-ORG\nrejects O\n",
    "a 100,000-character token": b"x" * 100_000 + b" B-ORG\nrejects O\n",
    "a 20,000-token sentence": b"word O\n" * 19_999 + b"Paris B-LOC\n",
}


def assert_one_error_line(result, code=1):
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", sorted(BAD_TAGGED))
def test_bad_tagged_files_are_refused_by_train_and_eval(name, tmp_path, trained_model):
    content, fragment = BAD_TAGGED[name]
    bad = write(tmp_path / "bad.txt", content)
    for args in (("train", bad, "-m", tmp_path / "m.pt"), ("eval", bad, "-m", trained_model)):
        result = run_cli(*args)
        assert_one_error_line(result)
        assert "bad.txt" in result.output and fragment in result.output
    # a malformed dev file is refused before the first epoch
    result = run_cli("train", DATA / "train.txt", "--dev", bad, "-m", tmp_path / "m.pt")
    assert_one_error_line(result)
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("name", sorted(ACCEPTED_TAGGED))
def test_odd_but_valid_files_are_read_and_scored(name, tmp_path, trained_model):
    path = write(tmp_path / "odd.txt", ACCEPTED_TAGGED[name])
    result = run_cli("eval", path, "-m", trained_model, "--json")
    assert result.exit_code == 0, result.output
    assert '"f1"' in result.stdout


@pytest.mark.parametrize("kind", ["text", "tokens", "conll"])
def test_tag_takes_odd_input(kind, tmp_path, trained_model):
    for content in (b"", b"\n\n", b"\x00\x01 x\n", b"x" * 100_000 + b"\n", b"a\r\nb",
                    b"\xef\xbb\xbfParis O\n", b"-DOCSTART- -X- O O\nParis O\n"):
        result = run_cli("tag", "-m", trained_model, "--input", kind, input=content)
        assert result.exit_code == 0, (content[:20], result.output)
    for path, message in ((tmp_path / "nope.txt", "no such file"), (tmp_path, "directory")):
        result = run_cli("tag", path, "-m", trained_model, "--input", kind)
        assert_one_error_line(result)
        assert message in result.output
    result = run_cli("tag", "-m", trained_model, "--input", kind, input=b"ok\n\xff\n")
    assert_one_error_line(result)
    assert "<stdin>:2:" in result.output


def test_labels_the_model_never_saw_are_errors_with_a_warning(tmp_path, trained_model):
    data = write(tmp_path / "new.txt", "Acme B-COMPANY\nsaid O\n\nPeter B-PER\n")
    result = run_cli("eval", data, "-m", trained_model, "--json")
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "COMPANY" in result.stderr
    assert '"COMPANY"' in result.stdout


def test_checks_before_training(tmp_path):
    train = DATA / "train.txt"
    assert_one_error_line(run_cli("train", train, "-m", tmp_path / "no" / "m.pt"))
    assert_one_error_line(run_cli("train", train, "-m", tmp_path))
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert_one_error_line(run_cli("train", train, "-m", locked / "m.pt"))
    import torch

    if not torch.cuda.is_available():
        result = run_cli("train", train, "-m", tmp_path / "m.pt", "--device", "cuda")
        assert_one_error_line(result, code=2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=300),
                         st.text(max_size=300).map(lambda text: text.encode("utf-8"))))
def test_reader_gives_sentences_or_a_user_error(tmp_path, content):
    path = write(tmp_path / "fuzz.txt", content)
    try:
        data = read_tagged(str(path))
    except NerlstmError as error:
        assert str(error).startswith(str(path))
    else:
        assert data.sentences and all(s.tokens and len(s.tags) == len(s.tokens)
                                      for s in data.sentences)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)),
       kind=st.sampled_from(["text", "tokens", "conll"]))
def test_tag_never_crashes(trained_model, content, kind):
    result = run_cli("tag", "-m", trained_model, "--input", kind, "--format", "jsonl",
                     input=content)
    if result.exit_code == 0:
        assert "Traceback" not in result.output
    else:
        assert_one_error_line(result)
