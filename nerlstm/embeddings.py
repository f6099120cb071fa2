"""Pretrained word vectors: GloVe text, word2vec/fastText text and word2vec binary, each
also gzip-compressed, the format detected from the file.

Only the vectors of wanted words are parsed, so that reading a file of 400,000 words takes
seconds; the rest of each line is never split.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from nerlstm.errors import NerlstmError
from nerlstm.vocab import Vocab, word_keys


@dataclass
class Vectors:
    """Vectors of the wanted words found in a file.

    Attributes:
        dim: the file's dimension.
        vectors: word -> vector, for wanted words only.
        words_in_file: how many entries the file has.
        duplicates: entries whose word came earlier in the file (the first is kept).
        scale: standard deviation of the values read, to initialise missing words alike.
    """

    dim: int
    vectors: dict[str, torch.Tensor] = field(default_factory=dict)
    words_in_file: int = 0
    duplicates: int = 0
    scale: float = 0.1


def _open(path: str) -> io.BufferedReader:
    from nerlstm.conll import open_binary

    handle = open_binary(path)
    if handle.peek(2)[:2] == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=handle))  # type: ignore[arg-type]
    return handle


def _header(line: bytes) -> tuple[int, int] | None:
    fields = line.split()
    if len(fields) == 2 and all(part.isdigit() for part in fields):
        return int(fields[0]), int(fields[1])
    return None


def read_vectors(path: str, wanted: Iterable[str] | None = None) -> Vectors:
    """Read the vectors of ``wanted`` words (all words when None).

    Raises:
        NerlstmError: naming file and line, for a line whose size differs from the others,
            a value that is not a number, a file that is not a vector file.
    """
    wanted_set = None if wanted is None else set(wanted)
    try:
        with _open(path) as handle:
            first = handle.readline()
            header = _header(first)
            if header is not None and _is_binary(handle, header[1]):
                return _read_binary(handle, path, header, wanted_set)
            return _read_text(handle, path, first, header, wanted_set)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise NerlstmError(f"cannot read the vectors file: {error}", path=path) from None


def _is_binary(handle: io.BufferedReader, dim: int) -> bool:
    """A word2vec binary entry is a word, a space, then 4*dim bytes of float32."""
    sample = handle.peek(4 * dim + 64)[: 4 * dim + 64]
    space = sample.find(b" ")
    if space < 0:
        return False
    body = sample[space + 1: space + 1 + 4 * dim]
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return True
    return not all(part.replace(".", "").replace("-", "").replace("e", "").isdigit()
                   for part in text.split()[:3])


def _read_text(handle, path: str, first: bytes, header: tuple[int, int] | None,
               wanted: set[str] | None) -> Vectors:
    dim = header[1] if header else None
    found = Vectors(dim=dim or 0)
    seen: set[str] = set()
    values_read: list[torch.Tensor] = []
    lines = iter(handle) if header else _chain(first, handle)
    start = 2 if header else 1
    for number, raw in enumerate(lines, start=start):
        line = raw.rstrip(b"\r\n").rstrip(b" \t")
        if not line.strip():
            continue
        if dim is None:  # GloVe: the first line gives the dimension
            dim = len(line.split(b" ")) - 1
            found.dim = dim
            if dim < 1:
                raise NerlstmError("not a vectors file: expected a word and numbers per line",
                                   path=path, line=number)
        # Words may contain spaces (some GloVe files): the last dim fields are the numbers.
        # Counting spaces in C keeps the lines of unwanted words from being split at all.
        spaces = line.count(b" ")
        if spaces < dim:
            raise NerlstmError(f"expected a word and {dim} numbers, found fewer fields",
                               path=path, line=number)
        cut = line.index(b" ") if spaces == dim else len(line.rsplit(b" ", dim)[0])
        word = line[:cut].decode("utf-8", errors="replace")
        if spaces > dim and all(_is_number(part) for part in word.split(" ")[1:]):
            raise NerlstmError(f"expected {dim} numbers like the lines before, found "
                               f"{spaces}", path=path, line=number)
        found.words_in_file += 1
        if word in seen:
            found.duplicates += 1
            continue
        seen.add(word)
        if wanted is not None and word not in wanted:
            continue
        try:
            vector = torch.tensor([float(value) for value in line[cut + 1:].split(b" ")])
        except ValueError:
            raise NerlstmError("expected numbers after the word", path=path,
                               line=number) from None
        found.vectors[word] = vector
        values_read.append(vector)
    if found.words_in_file == 0:
        raise NerlstmError("no vectors found", path=path)
    return _with_scale(found, values_read)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _chain(first: bytes, rest) -> Iterable[bytes]:
    yield first
    yield from rest


def _read_binary(handle, path: str, header: tuple[int, int], wanted: set[str] | None
                 ) -> Vectors:
    count, dim = header
    found = Vectors(dim=dim)
    values_read: list[torch.Tensor] = []
    size = 4 * dim
    for entry in range(count):
        word_bytes = bytearray()
        while True:
            char = handle.read(1)
            if not char:
                raise NerlstmError(f"file ends after {entry} of the {count} vectors its header "
                                   f"announces", path=path)
            if char == b" ":
                break
            if char != b"\n" or word_bytes:  # entries may be separated by a newline
                word_bytes += char
        body = handle.read(size)
        if len(body) < size:
            raise NerlstmError(f"file ends inside vector {entry + 1} of {count}", path=path)
        word = word_bytes.decode("utf-8", errors="replace")
        found.words_in_file += 1
        if word in found.vectors or (wanted is not None and word not in wanted):
            found.duplicates += word in found.vectors
            continue
        vector = torch.tensor(struct.unpack(f"<{dim}f", body))
        found.vectors[word] = vector
        values_read.append(vector)
    return _with_scale(found, values_read)


def _with_scale(found: Vectors, values: list[torch.Tensor]) -> Vectors:
    if values:
        stacked = torch.stack(values)
        spread = stacked.std().item() if stacked.numel() > 1 else 0.0
        found.scale = spread if math.isfinite(spread) and spread > 0 else 0.1
    return found


def wanted_keys(words: Iterable[str]) -> set[str]:
    """Every form under which the vocabulary may find these words in a vectors file."""
    return {key for word in words for key in word_keys(word)}


def vector_for(word: str, vectors: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The vector of the first of the word's forms (exact, lowercased, digits to 0) found."""
    for key in word_keys(word):
        found = vectors.get(key)
        if found is not None:
            return found
    return None


def initial_table(words: Vocab, found: Vectors, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, int]:
    """An embedding table for ``words``: file vectors where there are some, random values at
    the file's scale elsewhere, zeros for padding. Returns the table and how many rows came
    from the file."""
    table = torch.randn(len(words), found.dim, generator=generator) * found.scale
    table[0] = 0
    from_file = 0
    for index, word in enumerate(words.symbols[2:], start=2):
        vector = vector_for(word, found.vectors)
        if vector is not None:
            table[index] = vector
            from_file += 1
    return table, from_file
