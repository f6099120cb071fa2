"""Tagging on several processes: `nerlstm tag --workers N`.

The main process reads and cuts the input into records, groups them into chunks of whole
contexts (never inside a document, or a long document's piece, as :func:`tag_records` reads
them), and hands the chunks to N worker processes; each loads the model once and tags on one
torch thread. Answers are written in input order. At most ``2 * N`` chunks are in flight, so
memory stays flat on any input; a pause in the input (a terminal, a slow pipe) answers what
was read so far.

Workers start with ``spawn``: a fresh interpreter each, with none of the parent's torch
threads or locks, and SIGINT ignored, so that Ctrl-C reaches the main process only, which
ends them all. The main process waits on the workers' answers and their exits at once, so
that a worker killed (SIGKILL, the OOM killer) ends the run with an error naming it, at
once: the answers are written whole, so the output so far ends with a whole document.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing import connection
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TextIO

from nerlstm.errors import NerlstmError
from nerlstm.records import (
    DOCUMENT_CHUNK_BATCHES,
    FORMATTERS,
    Record,
    Tagged,
    keep_confident,
    nonempty_ranges,
    tag_records,
)
from nerlstm.textio import PAUSE

# Chunks in flight per worker: one being tagged, one waiting, so that no worker idles
# while the main process writes an answer.
IN_FLIGHT_PER_WORKER = 2


@dataclass(frozen=True)
class Output:
    """How `nerlstm tag` writes a record's result: ``form`` (inline, conll or jsonl), its
    entities below ``min_score`` dropped; ``column_input`` (conll input) writes no JSON
    object for the lines between sentences."""

    form: str
    min_score: float = 0.0
    column_input: bool = False

    @property
    def scores(self) -> bool:
        """Whether the entities need their probabilities."""
        return self.form == "jsonl" or self.min_score > 0

    def __call__(self, record: Record, tagged: Tagged) -> str | None:
        """The text to write for a record (without its line end), or None."""
        if self.form == "jsonl" and self.column_input and not record.tokens:
            return None  # lines between sentences only: no record of their own
        if self.min_score > 0:
            tagged = keep_confident(tagged, self.min_score)
        return FORMATTERS[self.form](record, tagged)


def chunks(records: Iterable[Record | None], sentences: int) -> Iterator[list[Record] | None]:
    """Records in lists of at least ``sentences`` sentences (the last may hold fewer), cut
    only where a context begins (a document, or a piece of a long one, numbered as
    :func:`nerlstm.batching.context_numbering` does); a PAUSE ends the list read so far and
    is passed on."""
    from nerlstm.batching import context_numbering

    chunk: list[Record] = []
    count, context, context_of = 0, -1, context_numbering()
    for record in records:
        if record is PAUSE:
            if chunk:
                yield chunk
                chunk, count = [], 0
            yield PAUSE
            continue
        own = [context_of(record.document) for _ in nonempty_ranges(record)]
        if own and own[0] != context and count >= sentences:
            yield chunk
            chunk, count = [], 0
        context = own[-1] if own else context
        chunk.append(record)
        count += len(own)
    if chunk:
        yield chunk


# In a worker process: its tagger and settings, set once by _start_worker.
_worker: dict = {}


def _start_worker(model: str, precision: str, batch_size: int, output: Output) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process answers Ctrl-C
    from nerlstm.api import load_tagger

    tagger, _ = load_tagger(model, device="cpu", threads=1, precision=precision)
    _worker.update(tagger=tagger, batch_size=batch_size, output=output)


def _tag_chunk(chunk: list[Record]) -> str:
    output: Output = _worker["output"]
    pieces = []
    for record, tagged in tag_records(_worker["tagger"], chunk, batch_size=_worker["batch_size"],
                                      scores=output.scores):
        text = output(record, tagged)
        if text is not None:
            pieces.append(text + "\n")
    return "".join(pieces)


def _serve(chunks_in: Connection, answers_out: Connection, *settings) -> None:
    """A worker process: tag each chunk that arrives and answer in the same order, until the
    main process closes the pipe or goes away."""
    inbox: queue.SimpleQueue = queue.SimpleQueue()

    def receive() -> None:
        # Read on while tagging, so that the main process never blocks sending a chunk while
        # this one blocks sending it an answer.
        try:
            while True:
                inbox.put(chunks_in.recv())
        except (EOFError, OSError):
            inbox.put(None)

    threading.Thread(target=receive, daemon=True).start()
    _start_worker(*settings)
    while (chunk := inbox.get()) is not None:
        try:
            answer = ("text", _tag_chunk(chunk))
        except NerlstmError as error:
            answer = ("error", error)
        except Exception:
            answer = ("bug", traceback.format_exc())
        try:
            answers_out.send(answer)
        except OSError:
            return  # the main process is gone


@dataclass
class _Worker:
    """A worker process, numbered from 1, and the main process's ends of its two pipes."""

    number: int
    process: BaseProcess
    chunks: Connection
    answers: Connection
    held: deque = field(default_factory=deque)  # boxes for its answers, oldest first


class _Team:
    """The worker processes. Each has a pipe of its own for its answers, so that one dying
    in the middle of an answer ends that pipe only, and its exit is seen by its sentinel:
    a worker killed (the OOM killer, SIGKILL) is an error at once, never a wait."""

    def __init__(self) -> None:
        self.workers: list[_Worker] = []

    def start(self, count: int, settings: tuple) -> None:
        context = multiprocessing.get_context("spawn")
        # Workers start with SIGINT ignored (a disposition kept across exec), so that a Ctrl-C
        # while they import torch does not print a traceback from each of them.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for number in range(1, count + 1):
                chunks_in, chunks_out = context.Pipe(duplex=False)
                answers_in, answers_out = context.Pipe(duplex=False)
                process = context.Process(target=_serve, daemon=True,
                                          args=(chunks_in, answers_out, *settings))
                process.start()
                chunks_in.close()  # the worker's ends: a pipe ends when the worker does
                answers_out.close()
                self.workers.append(_Worker(number, process, chunks_out, answers_in))
        finally:
            signal.signal(signal.SIGINT, previous)

    def send(self, chunk: list[Record]) -> list:
        """Give ``chunk`` to the worker holding the fewest; returns the box its answer will
        be put in (``box[0]``, None until then)."""
        worker = min(self.workers, key=lambda worker: len(worker.held))
        try:
            worker.chunks.send(chunk)
        except OSError:
            raise self.ended(worker) from None
        box = [None]
        worker.held.append(box)
        return box

    def receive(self, timeout: float | None) -> None:
        """Put the answers that arrive within ``timeout`` seconds (None: until one does) in
        their boxes; raise the error a worker met, or NerlstmError if a worker ended."""
        busy = {worker.answers: worker for worker in self.workers if worker.held}
        ends = {worker.process.sentinel: worker for worker in self.workers}
        for ready in connection.wait([*busy, *ends], timeout):
            if ready not in busy:
                raise self.ended(ends[ready])
            worker = busy[ready]
            try:
                kind, value = ready.recv()
            except (EOFError, OSError):  # ended in the middle of an answer
                raise self.ended(worker) from None
            if kind == "error":
                raise value
            if kind == "bug":
                raise RuntimeError(f"tagging worker {worker.number} failed:\n{value}")
            worker.held.popleft()[0] = value

    @staticmethod
    def ended(worker: _Worker) -> NerlstmError:
        """The error that a worker ended, with how (its signal: SIGKILL is the OOM killer's)."""
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        if code is None:
            how = "stopped answering"
        elif code >= 0:
            how = f"exited with code {code}"
        else:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = "unknown"
            how = f"was killed by signal {-code} ({name}"
            how += "; out of memory?)" if -code == signal.SIGKILL else ")"
        return NerlstmError(f"tagging worker {worker.number} (pid {worker.process.pid}) {how}")

    def close(self) -> None:
        """End every worker (SIGTERM; SIGKILL if one is still there 10 s later)."""
        for worker in self.workers:
            worker.chunks.close()
            worker.process.terminate()
        for worker in self.workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.answers.close()


def tag_in_processes(records: Iterable[Record | None], out: TextIO, *, model: str,
                     workers: int, output: Output, batch_size: int = 256,
                     precision: str = "float32", flush_each: bool = False) -> None:
    """Tag ``records`` on ``workers`` processes, writing each answer to ``out`` in input
    order (flushing after each chunk with ``flush_each``, and at each PAUSE).

    The workers are ended however this returns or raises (Ctrl-C, a closed pipe, an input
    error): none outlives the call. A worker that dies (killed, out of memory) raises
    NerlstmError naming it and its signal; what was written before is whole records.
    """
    team = _Team()
    pending: deque[list] = deque()

    def write_answered(timeout: float | None) -> None:
        team.receive(timeout)
        while pending and pending[0][0] is not None:
            out.write(pending.popleft()[0])
            if flush_each:
                out.flush()

    try:
        team.start(workers, (model, precision, batch_size, output))
        for chunk in chunks(records, batch_size * DOCUMENT_CHUNK_BATCHES):
            if chunk is PAUSE:
                while pending:
                    write_answered(None)
                out.flush()
                continue
            while len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                write_answered(None)
            pending.append(team.send(chunk))
            write_answered(0)
        while pending:
            write_answered(None)
    finally:
        team.close()
