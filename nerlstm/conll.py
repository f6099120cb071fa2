"""Reading and writing CoNLL column files.

A sentence is a run of non-blank lines; columns are split on runs of spaces or tabs.
``-DOCSTART-`` lines are dropped and end the current sentence (and document).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from nerlstm import schemes
from nerlstm.errors import NerlstmError

DOCSTART = "-DOCSTART-"
COLUMN_SEPARATOR = re.compile(r"[ \t]+")
_BLANK = " \t\r\f\v"


@dataclass
class Sentence:
    """One sentence of a column file.

    Attributes:
        tokens: the token column.
        tags: the tag column, or None when the file was read without tags.
        line: 1-based line number of the first token in its file.
        document: index of the document (counted by ``-DOCSTART-`` lines) it belongs to.
        rows: every column of every line, kept so that files can be written back.
    """

    tokens: list[str]
    tags: list[str] | None = None
    line: int = 0
    document: int = 0
    rows: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tokens)


def decode_bytes(data: bytes, path: str, encoding: str, first_line: int = 1) -> str:
    """Decode text, naming the line and byte of the first undecodable byte.

    A UTF-8 byte-order mark is dropped at the start of a file (``first_line`` 1) only.
    """
    codec = "utf-8-sig" if first_line == 1 and encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return data.decode(codec)
    except LookupError:
        raise NerlstmError(f"unknown encoding '{encoding}'", exit_code=2) from None
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + first_line
        raise NerlstmError(
            f"byte 0x{data[error.start]:02x} cannot be decoded as {encoding} "
            f"(use --encoding, for example --encoding latin-1)", path=path, line=line) from None


def open_binary(path: str) -> BinaryIO:
    """Open a file for reading bytes, with user-facing errors for missing or unreadable files."""
    if os.path.isdir(path):
        raise NerlstmError("is a directory, expected a file", path=path)
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise NerlstmError("no such file", path=path) from None
    except OSError as error:
        raise NerlstmError(f"cannot read: {error.strerror}", path=path) from None


def read_text(path: str, encoding: str = "utf-8") -> str:
    """Read and decode a whole file, with user-facing errors."""
    with open_binary(path) as handle:
        data = handle.read()
    return decode_bytes(data, path, encoding)


def _resolve_column(index: int, width: int) -> int | None:
    resolved = index + width if index < 0 else index
    return resolved if 0 <= resolved < width else None


def parse_conll(lines: Iterable[str], *, path: str = "<stdin>", token_column: int = 0,
                tag_column: int | None = -1, first_line: int = 1) -> Iterator[Sentence]:
    """Yield sentences from lines of a column file.

    Args:
        lines: the file's lines, with or without line ends.
        path: file name for error messages.
        token_column: 0-based column of the token; negative counts from the end.
        tag_column: column of the tag, or None to read tokens only.
        first_line: line number of the first line.

    Raises:
        NerlstmError: on mixed column counts or a missing column, naming file and line.
    """
    rows: list[list[str]] = []
    start = 0
    document = 0

    def finish() -> Sentence:
        width = len(rows[0])
        token_index = _resolve_column(token_column, width)
        tag_index = None if tag_column is None else _resolve_column(tag_column, width)
        if token_index is None or (tag_column is not None and tag_index is None):
            wanted = token_column if token_index is None else tag_column
            what = "token" if token_index is None else "tag"
            raise NerlstmError(
                f"the {what} column {wanted} does not exist: the line has {width} "
                f"column{'s' if width != 1 else ''} (use --token-column / --tag-column)",
                path=path, line=start)
        if tag_index is not None and tag_index == token_index:
            raise NerlstmError(
                f"the line has {width} column{'s' if width != 1 else ''}, so the token and the "
                f"tag would be the same column; expected a token and a tag "
                f"(use --token-column / --tag-column)", path=path, line=start)
        return Sentence(
            tokens=[row[token_index] for row in rows],
            tags=None if tag_index is None else [row[tag_index] for row in rows],
            line=start, document=document, rows=list(rows))

    number = first_line - 1
    for number, raw in enumerate(lines, start=first_line):
        text = raw.rstrip("\r\n").strip(_BLANK)
        if not text:
            if rows:
                yield finish()
                rows = []
            continue
        columns = COLUMN_SEPARATOR.split(text)
        if columns[0] == DOCSTART:
            if rows:
                yield finish()
                rows = []
            document += 1
            continue
        if rows and len(columns) != len(rows[0]):
            raise NerlstmError(
                f"expected {len(rows[0])} columns like the lines above, found {len(columns)}",
                path=path, line=number)
        if not rows:
            start = number
        rows.append(columns)
    if rows:
        yield finish()


def read_conll(path: str, *, encoding: str = "utf-8", token_column: int = 0,
               tag_column: int | None = -1, require_sentences: bool = True) -> list[Sentence]:
    """Read a whole column file into sentences; see :func:`parse_conll` for the options."""
    text = read_text(path, encoding)
    sentences = list(parse_conll(text.split("\n"), path=path, token_column=token_column,
                                 tag_column=tag_column))
    if require_sentences and not sentences:
        raise NerlstmError("no sentences found: expected token lines separated by blank lines",
                           path=path)
    return sentences


def write_columns(out: TextIO, rows: Iterable[Iterable[str]]) -> None:
    """Write one sentence as space-separated columns followed by a blank line."""
    for row in rows:
        out.write(" ".join(row))
        out.write("\n")
    out.write("\n")


@dataclass
class TaggedData:
    """A tagged file as read: its sentences, scheme and statistics."""

    path: str
    sentences: list[Sentence]
    scheme: str

    @property
    def tokens(self) -> int:
        return sum(len(sentence) for sentence in self.sentences)

    @property
    def entity_counts(self) -> dict[str, int]:
        from collections import Counter

        counts: Counter = Counter()
        for sentence in self.sentences:
            counts.update(span.type for span in schemes.spans(sentence.tags))
        return dict(sorted(counts.items()))

    def describe(self) -> dict:
        return {"path": self.path, "sentences": len(self.sentences), "tokens": self.tokens,
                "scheme": self.scheme, "entities": self.entity_counts}


def read_tagged(path: str, *, encoding: str = "utf-8", token_column: int = 0,
                tag_column: int = -1, scheme: str = "auto") -> TaggedData:
    """Read a tagged column file, check every tag, and detect its scheme unless given."""
    sentences = read_conll(path, encoding=encoding, token_column=token_column,
                           tag_column=tag_column)
    for sentence in sentences:
        schemes.check_tags(sentence.tags, path=path, line=sentence.line)
    if scheme == "auto":
        scheme = schemes.detect_scheme([sentence.tags for sentence in sentences])
    return TaggedData(path, sentences, scheme)
