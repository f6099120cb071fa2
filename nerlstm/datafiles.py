"""Tagged data in any of the formats nerlstm reads, as one kind of object.

A CoNLL column file, a JSONL span file or a Hugging Face dataset (``hf:NAME[:SPLIT]``) all
give a :class:`nerlstm.conll.TaggedData` of the same sentences and documents, so that
training and evaluation never ask where data came from. Also the writers behind
``nerlstm convert``. No torch here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from nerlstm import schemes
from nerlstm.conll import DOCSTART, Sentence, TaggedData, checked_data, decode_bytes, read_tagged
from nerlstm.conll import read_text as read_file_text
from nerlstm.errors import NerlstmError
from nerlstm.hfdata import is_hf, read_hf

FORMATS = ("auto", "conll", "jsonl")
STDIN = "-"


@dataclass
class Reading:
    """How data is read: the settings of :class:`nerlstm.config.DataSettings` that say it,
    and the tokenizer that cuts JSONL texts (the model's)."""

    token_column: int = 0
    tag_column: int = -1
    encoding: str = "utf-8"
    scheme: str = "auto"
    data_format: str = "auto"
    misaligned: str = "snap"
    hf_tokens: str = "tokens"
    hf_tags: str = "ner_tags"
    hf_document: str = "document"
    label_map: str = ""
    tokenizer: str = "default"


def read_text(path: str, encoding: str) -> str:
    """A file's text, or stdin's for ``-``."""
    if path == STDIN:
        return decode_bytes(sys.stdin.buffer.read(), "<stdin>", encoding)
    return read_file_text(path, encoding)


def detect_format(path: str, text: str, data_format: str = "auto") -> str:
    """``conll`` or ``jsonl``: as given, else by the extension (.jsonl, .json), else by the
    first non-blank line (a JSON object starts with ``{``)."""
    if data_format not in FORMATS:
        raise NerlstmError(f"data format {data_format!r}: expected one of "
                           f"{', '.join(FORMATS)}", exit_code=2)
    if data_format != "auto":
        return data_format
    if path.lower().endswith((".jsonl", ".json")):
        return "jsonl"
    first = next((line for line in text.split("\n") if line.strip()), "")
    return "jsonl" if first.lstrip().startswith("{") else "conll"


def read_data(path: str, reading: Reading | None = None, *, tags: bool = True
              ) -> TaggedData:
    """Tagged data from a file (``-``: stdin) or ``hf:NAME[:SPLIT]``, every tag checked,
    the label map applied, its scheme detected unless given (JSONL spans are IOB2).

    With ``tags`` False only the tokens are read (the vocabulary of more files).

    Raises:
        NerlstmError: on bad data, naming file and line.
    """
    reading = reading or Reading()
    path = str(path)
    name = "<stdin>" if path == STDIN else path
    warnings: list[str] = []
    if is_hf(path):
        sentences = read_hf(path, tokens=reading.hf_tokens,
                            tags=reading.hf_tags if tags else None,
                            document=reading.hf_document)
        data = checked_data(path, sentences, reading.scheme) if tags else \
            TaggedData(path, sentences, "iob2")
        data.format = "hf"
    else:
        text = read_text(path, reading.encoding)
        if detect_format(path, text, reading.data_format) == "jsonl":
            from nerlstm.jsonl import parse_jsonl

            found = parse_jsonl(text.split("\n"), path=name, tokenizer=reading.tokenizer,
                                misaligned=reading.misaligned)
            if not found.sentences:
                raise NerlstmError("no sentences found: expected JSON objects with a "
                                   "\"text\", one a line", path=name)
            data = TaggedData(name, found.sentences, "iob2", format="jsonl")
            warnings += found.warnings(name, reading.misaligned)
        elif tags:
            data = read_tagged(name, encoding=reading.encoding,
                               token_column=reading.token_column,
                               tag_column=reading.tag_column, scheme=reading.scheme, text=text)
        else:
            from nerlstm.conll import read_conll

            data = TaggedData(name, read_conll(name, token_column=reading.token_column,
                                               tag_column=None, text=text), "iob2")
    if reading.label_map and tags:
        from nerlstm.labelmap import apply_label_map, parse_label_map

        warnings += apply_label_map(data.sentences, parse_label_map(reading.label_map),
                                    data.scheme)
    data.warnings = warnings
    return data


def document_count(sentences: list[Sentence]) -> int:
    return len({sentence.document for sentence in sentences})


def write_conll(sentences: list[Sentence], out: TextIO, scheme: str = "iob2") -> None:
    """Token and tag per line, a blank line after each sentence; where there is more than
    one document, each starts with a ``-DOCSTART- O`` line (as CoNLL-2003 does)."""
    documents = document_count(sentences) > 1
    previous = None
    for sentence in sentences:
        if documents and sentence.document != previous:
            out.write(f"{DOCSTART} O\n\n")
        previous = sentence.document
        for token in sentence.tokens:
            if not token or any(char.isspace() for char in token):
                raise NerlstmError(f"the token {token!r} holds a space, which a column file "
                                   f"cannot: expected tokens without spaces",
                                   path=None, line=None)
        tags = schemes.convert(sentence.tags or ["O"] * len(sentence.tokens), scheme)
        out.write("".join(f"{token} {tag}\n" for token, tag in zip(sentence.tokens, tags)))
        out.write("\n")
