"""Tagging on several processes: `nerlstm tag --workers N`.

The main process reads and cuts the input into records, groups them into chunks of whole
contexts (never inside a document, or a long document's piece, as :func:`tag_records` reads
them), and hands the chunks to N worker processes; each loads the model once and tags on one
torch thread. Answers are written in input order. At most ``2 * N`` chunks are in flight, so
memory stays flat on any input; a pause in the input (a terminal, a slow pipe) answers what
was read so far.

Workers start with ``spawn``: a fresh interpreter each, with none of the parent's torch
threads or locks, and SIGINT ignored, so that Ctrl-C reaches the main process only, which
ends them all.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

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


def tag_in_processes(records: Iterable[Record | None], out: TextIO, *, model: str,
                     workers: int, output: Output, batch_size: int = 256,
                     precision: str = "float32", flush_each: bool = False) -> None:
    """Tag ``records`` on ``workers`` processes, writing each answer to ``out`` in input
    order (flushing after each chunk with ``flush_each``, and at each PAUSE).

    The workers are ended however this returns or raises (Ctrl-C, a closed pipe, an input
    error): none outlives the call.
    """
    context = multiprocessing.get_context("spawn")
    # Workers start with SIGINT ignored (a disposition kept across exec), so that a Ctrl-C
    # while they import torch does not print a traceback from each of them.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = context.Pool(workers, initializer=_start_worker,
                            initargs=(model, precision, batch_size, output))
    finally:
        signal.signal(signal.SIGINT, previous)
    pending: deque = deque()

    def write_next() -> None:
        out.write(pending.popleft().get())
        if flush_each:
            out.flush()

    try:
        size = batch_size * DOCUMENT_CHUNK_BATCHES
        for chunk in chunks(records, size):
            if chunk is PAUSE:
                while pending:
                    write_next()
                out.flush()
                continue
            pending.append(pool.apply_async(_tag_chunk, (chunk,)))
            while len(pending) > IN_FLIGHT_PER_WORKER * workers or (pending and
                                                                    pending[0].ready()):
                write_next()
        while pending:
            write_next()
        pool.close()
    finally:
        pool.terminate()
        pool.join()
