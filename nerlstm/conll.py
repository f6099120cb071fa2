"""Reading and writing CoNLL column files.

A sentence is a run of non-blank lines; columns are split on runs of spaces or tabs.
``-DOCSTART-`` lines are dropped and end the current sentence (and document).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

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
    """

    tokens: list[str]
    tags: list[str] | None = None
    line: int = 0
    document: int = 0

    def __len__(self) -> int:
        return len(self.tokens)


class NumberedLine(NamedTuple):
    """A line without its line end, and where it came from (as :class:`nerlstm.textio.Line`)."""

    source: str
    number: int
    text: str


@dataclass
class TokenLines:
    """The token lines of one sentence, split into columns, all with the same count."""

    rows: list[list[str]]
    source: str
    line: int      # 1-based number of the first row's line in ``source``
    document: int  # -DOCSTART- lines before it

    def column_indices(self, token_column: int, tag_column: int | None
                       ) -> tuple[int, int | None]:
        """The token's and the tag's (None without ``tag_column``) column indices.

        Raises:
            NerlstmError: where a column does not exist or the two would be one, naming
                the sentence's first line.
        """
        width = len(self.rows[0])
        token_index = _resolve_column(token_column, width)
        tag_index = None if tag_column is None else _resolve_column(tag_column, width)
        columns = f"{width} column{'s' if width != 1 else ''}"
        if token_index is None or (tag_column is not None and tag_index is None):
            wanted = token_column if token_index is None else tag_column
            what = "token" if token_index is None else "tag"
            raise NerlstmError(
                f"the {what} column {wanted} does not exist: the line has {columns} "
                f"(use --token-column / --tag-column)", path=self.source, line=self.line)
        if tag_index is not None and tag_index == token_index:
            raise NerlstmError(
                f"the line has {columns}, so the token and the tag would be the same column; "
                f"expected a token and a tag (use --token-column / --tag-column)",
                path=self.source, line=self.line)
        return token_index, tag_index


@dataclass
class Between:
    """A line between sentences as it was read: blank, or a ``-DOCSTART-`` line."""

    text: str
    docstart: bool


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


def read_columns(lines: Iterable[NumberedLine | None]) -> Iterator[TokenLines | Between | None]:
    """The sentences of a column file, each as it ends, and every other line in its place.

    A sentence ends at a blank line, a ``-DOCSTART-`` line, the end of its source or of the
    input. None (a pause in the input, see :mod:`nerlstm.textio`) is passed on at once; a
    sentence still open then comes later.

    Args:
        lines: objects with ``source``, ``number`` and ``text`` (the line without its end),
            as :class:`NumberedLine` or :class:`nerlstm.textio.Line`.

    Raises:
        NerlstmError: on a line whose column count differs from its sentence's first line,
            naming file and line.
    """
    sentence: TokenLines | None = None
    document = 0
    for line in lines:
        if line is None:
            yield None
            continue
        if sentence is not None and line.source != sentence.source:
            yield sentence
            sentence = None
        text = line.text.rstrip("\r\n").strip(_BLANK)
        columns = COLUMN_SEPARATOR.split(text) if text else None
        if columns is None or columns[0] == DOCSTART:
            if sentence is not None:
                yield sentence
                sentence = None
            document += columns is not None
            yield Between(line.text, docstart=columns is not None)
        elif sentence is None:
            sentence = TokenLines([columns], line.source, line.number, document)
        elif len(columns) != len(sentence.rows[0]):
            raise NerlstmError(
                f"expected {len(sentence.rows[0])} columns like the lines above, "
                f"found {len(columns)}", path=line.source, line=line.number)
        else:
            sentence.rows.append(columns)
    if sentence is not None:
        yield sentence


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
    numbered = (NumberedLine(path, number, text)
                for number, text in enumerate(lines, start=first_line))
    for found in read_columns(numbered):
        if isinstance(found, TokenLines):
            token_index, tag_index = found.column_indices(token_column, tag_column)
            yield Sentence(
                tokens=[row[token_index] for row in found.rows],
                tags=None if tag_index is None else [row[tag_index] for row in found.rows],
                line=found.line, document=found.document)


def read_conll(path: str, *, encoding: str = "utf-8", token_column: int = 0,
               tag_column: int | None = -1, require_sentences: bool = True,
               text: str | None = None) -> list[Sentence]:
    """Read a whole column file into sentences; see :func:`parse_conll` for the options.
    ``text``: the file's contents, already read (from stdin)."""
    text = read_text(path, encoding) if text is None else text
    sentences = list(parse_conll(text.split("\n"), path=path, token_column=token_column,
                                 tag_column=tag_column))
    if require_sentences and not sentences:
        raise NerlstmError("no sentences found: expected token lines separated by blank lines",
                           path=path)
    return sentences


@dataclass
class TaggedData:
    """A tagged file as read: its sentences, scheme and statistics, and what the reader
    warns about (spans moved to token boundaries, label map entries never used)."""

    path: str
    sentences: list[Sentence]
    scheme: str
    warnings: list[str] = field(default_factory=list)
    format: str = "conll"  # what it was read from: conll, jsonl or hf

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
                tag_column: int = -1, scheme: str = "auto", text: str | None = None
                ) -> TaggedData:
    """Read a tagged column file, check every tag, and detect its scheme unless given."""
    sentences = read_conll(path, encoding=encoding, token_column=token_column,
                           tag_column=tag_column, text=text)
    return checked_data(path, sentences, scheme)


def checked_data(path: str, sentences: list[Sentence], scheme: str = "auto") -> TaggedData:
    """Tagged sentences, every tag checked (naming the line of a bad one), the scheme
    detected unless given."""
    for sentence in sentences:
        schemes.check_tags(sentence.tags, path=path, line=sentence.line)
    if scheme == "auto":
        scheme = schemes.detect_scheme([sentence.tags for sentence in sentences])
    return TaggedData(path, sentences, scheme)
