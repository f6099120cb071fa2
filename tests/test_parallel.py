"""`nerlstm tag --workers N`: the same output as one process, in order, and ended quietly."""

import io
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import DATA, ROOT, default_sigint, run_cli

from nerlstm.errors import NerlstmError
from nerlstm.parallel import Output, chunks, tag_in_processes
from nerlstm.records import Record, text_record
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

def processes() -> Iterator[tuple[int, list[str]]]:
    """Each live process and the fields of /proc/PID/stat after its command's name: state,
    parent, group, session..."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                yield int(entry.name), fields


def session_processes(session: int) -> list[int]:
    """The processes still alive in a session."""
    return [pid for pid, fields in processes() if int(fields[3]) == session]


def workers_of(parent: int) -> list[int]:
    """The tagging workers a process started (not multiprocessing's resource tracker)."""
    found = []
    for pid, fields in processes():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in command:
            found.append(pid)
    return found


def assert_all_ended(session: int) -> None:
    deadline = time.monotonic() + 10
    while session_processes(session) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(session) == []


TAG = [sys.executable, "-m", "nerlstm", "tag", "-i", "tokens", "--workers", "2", "-b", "8"]
ENDLESS = ["yes", "Peter Blackburn visited Paris and met the EU in Bonn ."]


@contextmanager
def tagging_endless_input(model, output=None):
    """`nerlstm tag --workers 2` in a session of its own, fed without end, writing to a pipe
    or to the file ``output``; ended (SIGKILL) if the test has not ended it."""
    reading, writing = os.pipe()
    tagger = subprocess.Popen(TAG + ["-m", str(model)], stdin=reading,
                              stdout=output or subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                              start_new_session=True, preexec_fn=default_sigint)
    source = subprocess.Popen(ENDLESS, stdout=writing)
    os.close(reading)
    os.close(writing)
    try:
        if output is None:
            assert b"Paris" in tagger.stdout.readline()  # the workers are tagging
        else:
            deadline = time.monotonic() + 120
            while not os.fstat(output.fileno()).st_size and time.monotonic() < deadline:
                time.sleep(0.1)
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


# A worker that dies ----------------------------------------------------------------------

KILLED = r"tagging worker [12] \(pid {}\) was killed by signal 9 \(SIGKILL; out of memory\?\)"


def test_a_killed_worker_ends_the_run_at_once_with_one_line(trained_model, tmp_path):
    with open(tmp_path / "out", "wb") as output, \
            tagging_endless_input(trained_model, output) as tagger:
        workers = workers_of(tagger.pid)
        assert len(workers) == 2
        os.kill(workers[-1], signal.SIGKILL)  # as the OOM killer does
        _, stderr = tagger.communicate(timeout=120)  # not a wait for the dead worker's chunk
    assert tagger.returncode == 1
    assert re.fullmatch(f"error: {KILLED.format(workers[-1])}\n", stderr.decode()), stderr
    written = (tmp_path / "out").read_bytes()  # whole lines, each the same sentence tagged
    assert written.endswith(b"\n")
    assert len(set(written.splitlines())) == 1
    assert_all_ended(tagger.pid)


def test_tagging_on_processes_raises_the_one_error_type_when_a_worker_is_killed(trained_model):
    killed = []

    def records():
        for number in range(2000):
            if number == 100:  # after 8 answers at least: both workers are up
                killed.append(multiprocessing.active_children()[0].pid)
                os.kill(killed[0], signal.SIGKILL)
            text = f"Peter visited Paris on day {number} ."
            yield replace(text_record(text, "whitespace"), document=number)  # chunks of 8

    out = io.StringIO()
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("no end in 180 s"))
    signal.alarm(180)
    try:
        with pytest.raises(NerlstmError) as raised:
            tag_in_processes(records(), out, model=str(trained_model), workers=2,
                             output=Output("inline"), batch_size=4)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert re.fullmatch(KILLED.format(killed[0]), str(raised.value))
    assert multiprocessing.active_children() == []
    written = re.sub(r"\[[A-Z]+ |\]", "", out.getvalue())  # the records before, whole, in order
    assert 0 < written.count("\n") < 100
    assert written == "".join(f"Peter visited Paris on day {n} .\n"
                              for n in range(written.count("\n")))
