"""Reading input text line by line, from files or stdin, without waiting for more than is there.

Lines come as soon as they are complete, and a pause in the input (nothing more to read right
now, as on a terminal or a slow pipe) is reported, so that a caller batching lines can answer
the lines it holds instead of waiting for a full batch. Output files are written whole or not
at all.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from nerlstm.conll import decode_bytes, open_binary
from nerlstm.errors import NerlstmError

PAUSE = None  # yielded when no more input is ready yet
_CHUNK = 1 << 16


@dataclass
class Line:
    """One input line without its line end, with where it came from."""

    source: str
    number: int
    text: str


def _stdin_lines() -> Iterator[bytes | None]:
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, io.UnsupportedOperation):  # a stand-in stdin, as in tests
        yield from iter(sys.stdin.buffer.readline, b"")
        return
    pending = b""
    while True:
        while (end := pending.find(b"\n")) >= 0:
            yield pending[:end + 1]
            pending = pending[end + 1:]
        ready, _, _ = select.select([fd], [], [], 0)
        if not ready:
            yield PAUSE
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            if pending:
                yield pending
            return
        pending += chunk


def _file_lines(path: str) -> Iterator[bytes]:
    with open_binary(path) as handle:
        yield from iter(handle.readline, b"")


def input_lines(sources: Sequence[str], encoding: str = "utf-8") -> Iterator[Line | None]:
    """Lines of each source in turn ('-' is stdin), or PAUSE while stdin has nothing ready."""
    for source in sources:
        name = "<stdin>" if source == "-" else source
        raw_lines = _stdin_lines() if source == "-" else _file_lines(source)
        number = 0
        for raw in raw_lines:
            if raw is PAUSE:
                yield PAUSE
                continue
            number += 1
            text = decode_bytes(raw, name, encoding, first_line=number)
            yield Line(name, number, text.rstrip("\r\n"))


@contextlib.contextmanager
def output_file(path: str, encoding: str = "utf-8") -> Iterator[TextIO]:
    """A text stream to write ``path`` through (``-``: stdout). The file appears whole when
    the block ends, and not at all if it raises: what was there before is never half
    overwritten."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.",
                                             suffix=".tmp", dir=folder)
    except OSError as error:
        raise NerlstmError(f"cannot write: {error.strerror}", path=path) from None
    try:
        with os.fdopen(handle, "w", encoding=encoding) as out:
            yield out
        umask = os.umask(0)  # mkstemp makes the file private; give it a plain file's mode
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
