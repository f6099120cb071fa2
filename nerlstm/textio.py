"""Reading input text line by line, from files or stdin, with decoding errors that name the line."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence

from nerlstm.conll import decode_bytes, open_binary


def _binary_lines(source: str) -> Iterator[bytes]:
    if source == "-":
        stream = sys.stdin.buffer
        # readline, not iteration: iteration reads ahead and would hold back lines typed
        # on a terminal.
        yield from iter(stream.readline, b"")
        return
    with open_binary(source) as handle:
        yield from iter(handle.readline, b"")


def input_lines(sources: Sequence[str], encoding: str = "utf-8") -> Iterator[str]:
    """Lines of each source in turn ('-' is stdin), without their line ends."""
    for source in sources:
        name = "<stdin>" if source == "-" else source
        for number, raw in enumerate(_binary_lines(source), start=1):
            yield decode_bytes(raw, name, encoding, first_line=number).rstrip("\r\n")
