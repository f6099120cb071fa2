"""`nerlstm tag --workers N`: the same output as one process, in order, and ended quietly."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import DATA, ROOT, default_sigint, run_cli

from nerlstm.parallel import chunks
from nerlstm.records import Record
from nerlstm.textio import PAUSE

TEXT = "".join(f"Peter Blackburn visited Paris on day {n}. The EU met Smith in Bonn.\n"
               + ("\n" if n % 7 == 6 else "") for n in range(120))


def tag(*args, input=None):
    result = run_cli("tag", *args, input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("fmt", ["conll", "jsonl"])
def test_column_input_on_two_workers_equals_one_process(trained_model, fmt):
    # batches of 4 sentences make chunks of 8: the file goes out in many chunks
    args = ["-m", trained_model, "-i", "conll", "-f", fmt, "-b", "4", DATA / "test.txt"]
    one = tag(*args)
    assert tag(*args, "--workers", "2") == one
    assert one.count("\n") >= 100


@pytest.mark.parametrize("alone", [[], ["--lines"]])
def test_text_on_stdin_on_three_workers_equals_one_process_in_order(trained_model, alone):
    args = ["-m", trained_model, "-f", "jsonl", "-b", "2", *alone]
    one = tag(*args, input=TEXT)
    assert tag(*args, "--workers", "3", input=TEXT) == one
    assert [line.split('"')[3] for line in one.splitlines()] == TEXT.split("\n")[:-1]


def test_an_input_error_ends_the_workers_with_its_line(trained_model, tmp_path):
    lines = (DATA / "test.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    bad = tmp_path / "bad.txt"
    bad.write_text("".join(lines[:600]) + "Paris NNP\n" + "".join(lines[600:]), encoding="utf-8")
    result = run_cli("tag", "-m", trained_model, "-i", "conll", "-b", "4", "--workers", "2", bad)
    assert result.exit_code == 1
    assert "bad.txt:601: expected" in result.stderr
    assert "Traceback" not in result.output


def test_a_pause_on_stdin_answers_what_was_read(trained_model):
    process = subprocess.Popen(TAG + ["-m", str(trained_model)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, cwd=ROOT)
    try:
        process.stdin.write(b"Peter visited Paris .\n")
        process.stdin.flush()
        assert b"Paris" in process.stdout.readline()
        process.stdin.write(b"Smith went to Berlin .\n")
        process.stdin.flush()
        assert b"Berlin" in process.stdout.readline()
    finally:
        process.stdin.close()
        process.wait(timeout=60)
    assert process.returncode == 0


def test_workers_take_no_gpu(trained_model):
    result = run_cli("tag", "-m", trained_model, "--workers", "2", "--device", "cuda",
                     input="Paris\n")
    assert result.exit_code == 2
    assert "--workers runs on the CPU" in result.output


def record(document, sentences=1):
    return Record("x", [("x", 0, 1)] * sentences, document=document,
                  sentences=[(0, 1)] * sentences)


def test_chunks_are_cut_between_documents_only_and_at_pauses():
    records = [record(1), record(1), record(1), record(2), record(3, 2), PAUSE, record(3),
               record(4)]
    cut = [chunk if chunk is PAUSE else [r.document for r in chunk]
           for chunk in chunks(records, 2)]
    assert cut == [[1, 1, 1], [2, 3], PAUSE, [3, 4]]


# Ending: Ctrl-C and a reader that goes away ----------------------------------------------

def session_processes(session: int) -> list[int]:
    """The processes still alive in a session (each field after the command's name in
    /proc/PID/stat: state, parent, group, session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def assert_all_ended(session: int) -> None:
    deadline = time.monotonic() + 10
    while session_processes(session) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(session) == []


TAG = [sys.executable, "-m", "nerlstm", "tag", "-i", "tokens", "--workers", "2", "-b", "8"]
ENDLESS = ["yes", "Peter Blackburn visited Paris and met the EU in Bonn ."]


@contextmanager
def tagging_endless_input(model):
    """`nerlstm tag --workers 2` in a session of its own, fed without end; ended (SIGKILL) if
    the test has not ended it."""
    reading, writing = os.pipe()
    tagger = subprocess.Popen(TAG + ["-m", str(model)], stdin=reading, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True,
                              preexec_fn=default_sigint)
    source = subprocess.Popen(ENDLESS, stdout=writing)
    os.close(reading)
    os.close(writing)
    try:
        assert b"Paris" in tagger.stdout.readline()  # the workers are tagging
        yield tagger
    finally:
        if tagger.poll() is None:
            os.killpg(tagger.pid, signal.SIGKILL)
        source.kill()
        source.wait()


def test_ctrl_c_ends_every_worker_quietly(trained_model):
    with tagging_endless_input(trained_model) as tagger:
        time.sleep(0.5)
        os.killpg(tagger.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
        _, stderr = tagger.communicate(timeout=60)
    assert tagger.returncode == 130
    assert b"Traceback" not in stderr, stderr.decode()
    assert_all_ended(tagger.pid)


def test_a_reader_that_goes_away_ends_every_worker_quietly(trained_model):
    command = (f"{' '.join(ENDLESS[:1])} '{ENDLESS[1]}' | {' '.join(TAG)} -m {trained_model} "
               "| head -n 3; echo ${PIPESTATUS[1]} >&2")
    done = subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True)
    stdout, stderr = done.communicate(timeout=120)
    assert stdout.count(b"\n") == 3
    assert stderr == b"0\n", stderr.decode()
    assert_all_ended(done.pid)
