"""Reading and writing JSONL span files: one JSON object a line, a text and its entities as
character spans.

The keys are those the common annotation tools write, so that their exports read as they
are: ``entities`` (``nerlstm tag -f jsonl``), ``spans`` (Prodigy), ``label`` or ``labels``
(doccano); a span is ``[start, end, label]`` or ``{"start", "end", "label"}`` (doccano's
JSON export says ``start_offset`` and ``end_offset``). A document key (``document``,
``doc_id``...) groups consecutive lines into one document, as ``-DOCSTART-`` does in a
column file; without one, each line is a document of its own.

Texts are cut into tokens by a model's tokenizer and into sentences as ``nerlstm tag`` cuts
them, so that training data is read the way text will be tagged. A line that lists its
``tokens`` (with offsets, as ``tag -f jsonl`` and ``nerlstm convert`` write them) keeps
them, and a line that also lists its ``sentences`` (token ranges, as ``nerlstm convert``
writes them) keeps those: a column file converted to JSONL reads back as it was. The result
is the same :class:`nerlstm.conll.Sentence` objects a column file gives. No torch here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from nerlstm import schemes
from nerlstm.conll import Sentence
from nerlstm.errors import NerlstmError

SPAN_KEYS = ("entities", "spans", "label", "labels")
DOCUMENT_KEYS = ("document", "doc_id", "document_id", "doc")
MISALIGNED = ("snap", "drop", "error")
# How many misaligned spans the warning shows with their place.
SHOWN_MISALIGNED = 3


@dataclass
class Misaligned:
    """Spans that did not fall on token boundaries, and the first few of them."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, path: str, line: int, text: str, start: int, end: int, label: str,
            tokens: str) -> None:
        self.count += 1
        if len(self.examples) < SHOWN_MISALIGNED:
            self.examples.append(f"{path}:{line}: {label} {json.dumps(text[start:end], ensure_ascii=False)} "
                                 f"[{start}, {end}] cuts the tokens {tokens}")


@dataclass
class JsonlData:
    """What a JSONL file gave: its sentences, and what the reader had to say about it."""

    sentences: list[Sentence]
    documents: int
    misaligned: Misaligned
    spans_seen: bool  # some line held a span key: a file with none may use other key names

    def warnings(self, path: str, handling: str) -> list[str]:
        found = []
        if self.misaligned.count:
            what = {"snap": "widened to the tokens they touch", "drop": "dropped"}[handling]
            found.append(f"{path}: {self.misaligned.count:,} span"
                         f"{'s do' if self.misaligned.count != 1 else ' does'} not fall on "
                         f"token boundaries ({what}; --misaligned snap|drop|error)")
            found += self.misaligned.examples
        if not self.spans_seen and self.sentences:
            found.append(f"{path}: no line holds entities (keys read: "
                         f"{', '.join(SPAN_KEYS)}): every token is tagged O")
        return found


def text_tokens(text: str, tokenizer: str = "default"
                ) -> tuple[list[tuple[str, int, int]], list[tuple[int, int]]]:
    """A text's tokens (token, start, end), offsets into the whole text, and the (start,
    end) token ranges of its sentences: each line tokenized and cut into sentences, as
    ``nerlstm tag`` reads a document."""
    from nerlstm.sentences import split_sentences
    from nerlstm.tokenizer import tokenizer_for

    split = tokenizer_for(tokenizer)
    tokens: list[tuple[str, int, int]] = []
    sentences: list[tuple[int, int]] = []
    offset = 0
    for line in text.split("\n"):
        found = split(line)
        first = len(tokens)
        tokens += [(token, start + offset, end + offset) for token, start, end in found]
        sentences += [(first + start, first + end)
                      for start, end in split_sentences([token for token, _, _ in found])]
        offset += len(line) + 1
    return tokens, sentences


@dataclass
class JsonRecord:
    """One line of a JSONL file, checked: its text, tokens, sentences, spans and document."""

    text: str
    tokens: list[tuple[str, int, int]]
    sentences: list[tuple[int, int]]
    spans: list[tuple[int, int, str]] | None  # None: the line has no span key
    document: Any
    has_document: bool
    line: int


def parse_record(text_line: str, path: str, line: int, tokenizer: str = "default",
                 spans: bool = True) -> JsonRecord:
    """A JSONL line as a record; raises NerlstmError (file:line) on bad JSON, a missing or
    wrong text, spans outside the text or overlapping, or tokens that do not fit the text.
    With ``spans`` False the entities are not read (text to tag)."""
    try:
        values = json.loads(text_line)
    except json.JSONDecodeError as error:
        raise NerlstmError(f"not valid JSON ({error.msg} at column {error.colno}): expected "
                           f"one JSON object a line", path=path, line=line) from None
    if not isinstance(values, dict):
        raise NerlstmError(f"found a JSON {_json_kind(values)}, expected an object with a "
                           f"\"text\"", path=path, line=line)
    text = values.get("text")
    if not isinstance(text, str):
        found = "no \"text\" key" if text is None else f"\"text\" is a {_json_kind(text)}"
        raise NerlstmError(f"{found}: expected the text as a string", path=path, line=line)
    given = values.get("tokens")
    if given is not None:
        tokens = _given_tokens(given, text, path, line)
        sentences = _given_sentences(values["sentences"], len(tokens), path, line) \
            if "sentences" in values else _sentence_ranges(tokens, text)
    elif "sentences" in values:
        raise NerlstmError("\"sentences\" without \"tokens\": expected the tokens that the "
                           "sentence ranges count", path=path, line=line)
    else:
        tokens, sentences = text_tokens(text, tokenizer)
    key = next((key for key in DOCUMENT_KEYS if key in values), None)
    document = values[key] if key else None
    if isinstance(document, (dict, list)):
        raise NerlstmError(f"\"{key}\" is a {_json_kind(document)}: expected a document id "
                           f"(a string or a number)", path=path, line=line)
    found_spans = None
    if spans:
        span_key = next((key for key in SPAN_KEYS if key in values), None)
        if span_key is not None:
            found_spans = _spans(values[span_key], span_key, text, path, line)
    return JsonRecord(text, tokens, sentences, found_spans, document, key is not None, line)


def _json_kind(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _is_offset(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _given_tokens(given: Any, text: str, path: str, line: int) -> list[tuple[str, int, int]]:
    """Tokens as a line lists them: objects with start and end (as ``tag -f jsonl`` writes),
    or strings, found in the text in order."""
    if not isinstance(given, list):
        raise NerlstmError(f"\"tokens\" is a {_json_kind(given)}: expected a list of tokens",
                           path=path, line=line)
    tokens: list[tuple[str, int, int]] = []
    position = 0
    for number, token in enumerate(given):
        if isinstance(token, str):
            start = text.find(token, position) if token else -1
            if start < 0:
                raise NerlstmError(f"token {number} {json.dumps(token, ensure_ascii=False)} "
                                   f"is not in the text after character {position}: expected "
                                   f"the tokens in the order of the text", path=path, line=line)
            end = start + len(token)
        elif isinstance(token, dict) and _is_offset(token.get("start")) and \
                _is_offset(token.get("end")):
            start, end = token["start"], token["end"]
            if not position <= start < end <= len(text):
                raise NerlstmError(f"token {number} [{start}, {end}] is outside the text (of "
                                   f"{len(text)} characters) or before the token ahead of it: "
                                   f"expected tokens in order, inside the text",
                                   path=path, line=line)
        else:
            raise NerlstmError(f"token {number} is not a string or an object with integer "
                               f"\"start\" and \"end\"", path=path, line=line)
        tokens.append((text[start:end], start, end))
        position = end
    return tokens


def _sentence_ranges(tokens: Sequence[tuple[str, int, int]], text: str
                     ) -> list[tuple[int, int]]:
    """Given tokens cut into sentences as text is: each line of the text, and inside it where
    :func:`nerlstm.sentences.split_sentences` says."""
    from nerlstm.sentences import split_sentences

    ranges: list[tuple[int, int]] = []
    first = 0
    for index in range(1, len(tokens) + 1):
        if index == len(tokens) or "\n" in text[tokens[index - 1][2]:tokens[index][1]]:
            words = [token for token, _, _ in tokens[first:index]]
            ranges += [(first + start, first + end) for start, end in split_sentences(words)]
            first = index
    return ranges


def _given_sentences(given: Any, count: int, path: str, line: int) -> list[tuple[int, int]]:
    """Sentences as token ranges [start, end], in order, covering every token."""
    ranges: list[tuple[int, int]] = []
    position = 0
    for item in given if isinstance(given, list) else [None]:
        if not (isinstance(item, list) and len(item) == 2 and all(map(_is_offset, item))
                and item[0] == position and item[1] > position):
            raise NerlstmError(f"\"sentences\" holds {json.dumps(item)}: expected token ranges "
                               f"[start, end], in order, from 0 to the {count} tokens",
                               path=path, line=line)
        ranges.append((item[0], item[1]))
        position = item[1]
    if position != count:
        raise NerlstmError(f"\"sentences\" ends at token {position}: expected them to cover "
                           f"all {count} tokens", path=path, line=line)
    return ranges


def _spans(given: Any, key: str, text: str, path: str, line: int
           ) -> list[tuple[int, int, str]]:
    if not isinstance(given, list):
        raise NerlstmError(f"\"{key}\" is a {_json_kind(given)}: expected a list of spans, "
                           f"each [start, end, label] or {{\"start\", \"end\", \"label\"}}",
                           path=path, line=line)
    found = []
    for number, span in enumerate(given):
        if isinstance(span, list) and len(span) == 3:
            start, end, label = span
        elif isinstance(span, dict):
            start = span.get("start", span.get("start_offset"))
            end = span.get("end", span.get("end_offset"))
            label = span.get("label")
        else:
            start = end = label = None
        if not (_is_offset(start) and _is_offset(end) and isinstance(label, str)):
            raise NerlstmError(f"{key}[{number}] is {json.dumps(span, ensure_ascii=False)}: "
                               f"expected [start, end, label] or {{\"start\", \"end\", "
                               f"\"label\"}} with integer offsets", path=path, line=line)
        if not 0 <= start < end <= len(text):
            raise NerlstmError(f"{key}[{number}] [{start}, {end}] is outside the text (of "
                               f"{len(text)} characters): expected 0 <= start < end <= "
                               f"{len(text)}", path=path, line=line)
        if not label or any(char.isspace() for char in label):
            raise NerlstmError(f"{key}[{number}] has the label {json.dumps(label)}: expected "
                               f"a label without spaces", path=path, line=line)
        found.append((start, end, label))
    found = sorted(set(found))  # the same span twice is one entity
    for (start, end, label), (next_start, next_end, next_label) in zip(found, found[1:]):
        if next_start < end:
            raise NerlstmError(f"spans overlap: {label} [{start}, {end}] and {next_label} "
                               f"[{next_start}, {next_end}]: expected at most one entity per "
                               f"character", path=path, line=line)
    return found


def record_sentences(record: JsonRecord, path: str, misaligned: str,
                     report: Misaligned) -> list[tuple[list[str], list[str]]]:
    """A record's sentences as (tokens, IOB2 tags). A span off the token boundaries is
    widened to the tokens it touches (``snap``), left out (``drop``) or an error; a sentence
    break inside an entity is not made (the entity holds its sentence together)."""
    tokens = record.tokens
    entities: list[schemes.Span] = []
    for start, end, label in record.spans or []:
        touched = [index for index, (_, first, last) in enumerate(tokens)
                   if first < end and last > start]
        aligned = bool(touched) and tokens[touched[0]][1] == start and \
            tokens[touched[-1]][2] == end
        if not aligned:
            shown = " ".join(json.dumps(tokens[index][0], ensure_ascii=False)
                             for index in touched) or "(none: only spaces)"
            if misaligned == "error":
                raise NerlstmError(
                    f"the span {label} {json.dumps(record.text[start:end], ensure_ascii=False)}"
                    f" [{start}, {end}] does not fall on token boundaries (it cuts {shown}): "
                    f"expected spans that start and end with tokens (or --misaligned snap|drop)",
                    path=path, line=record.line)
            report.add(path, record.line, record.text, start, end, label, shown)
            if misaligned == "drop" or not touched:
                continue
        entity = schemes.Span(label, touched[0], touched[-1] + 1)
        if entities and entity.start < entities[-1].end:
            before = entities[-1]
            raise NerlstmError(
                f"spans {before.type} and {label} [{start}, {end}] share the token "
                f"{json.dumps(tokens[entity.start][0], ensure_ascii=False)} once widened to "
                f"token boundaries: expected one entity per token (use --misaligned drop)",
                path=path, line=record.line)
        entities.append(entity)
    breaks = {start for start, _ in record.sentences[1:]}
    for entity in entities:
        breaks -= set(range(entity.start + 1, entity.end))
    starts = sorted({0} | breaks) if tokens else []
    words = [token for token, _, _ in tokens]
    tags = schemes.tags_from_spans(entities, len(tokens), "iob2")
    return [(words[start:end], tags[start:end])
            for start, end in zip(starts, starts[1:] + [len(tokens)]) if end > start]


def parse_jsonl(lines: Iterable[str], *, path: str, tokenizer: str = "default",
                misaligned: str = "snap") -> JsonlData:
    """The sentences of a JSONL span file, tags in IOB2, documents numbered from 0.

    Args:
        lines: the file's lines.
        path: the file name for messages.
        tokenizer: how texts without tokens are cut (``default``, ``whitespace``, ``chars``).
        misaligned: ``snap``, ``drop`` or ``error``, for spans off the token boundaries.

    Raises:
        NerlstmError: naming file and line.
    """
    if misaligned not in MISALIGNED:
        raise NerlstmError(f"misaligned = {misaligned!r}: expected one of "
                           f"{', '.join(MISALIGNED)}", exit_code=2)
    sentences: list[Sentence] = []
    report = Misaligned()
    document, previous, spans_seen = -1, object(), False
    for number, text_line in enumerate(lines, start=1):
        if not text_line.strip():
            continue
        record = parse_record(text_line, path, number, tokenizer)
        spans_seen = spans_seen or record.spans is not None
        # consecutive lines with one id are one document; a line without an id is its own
        if not record.has_document or record.document != previous:
            document += 1
        previous = record.document if record.has_document else object()
        for tokens, tags in record_sentences(record, path, misaligned, report):
            sentences.append(Sentence(tokens, tags, line=number, document=document))
    return JsonlData(sentences, document + 1, report, spans_seen)


def write_jsonl(sentences: Iterable[Sentence], out: TextIO) -> None:
    """Sentences as JSONL: one line each, its tokens joined by spaces as the text, with the
    tokens' offsets and the sentence (so that reading it back keeps them as they are), the
    entities and the document."""
    for sentence in sentences:
        tokens, position = [], 0
        for token in sentence.tokens:
            tokens.append({"text": token, "start": position, "end": position + len(token)})
            position += len(token) + 1
        entities = [{"start": tokens[span.start]["start"], "end": tokens[span.end - 1]["end"],
                     "label": span.type,
                     "text": " ".join(sentence.tokens[span.start:span.end])}
                    for span in schemes.spans(sentence.tags or [])]
        out.write(json.dumps({"text": " ".join(sentence.tokens), "document": sentence.document,
                              "entities": entities, "tokens": tokens,
                              "sentences": [[0, len(tokens)]]},
                             ensure_ascii=False) + "\n")


def jsonl_texts(lines: Iterable[Any], tokenizer: str = "default") -> Iterator[Any]:
    """The records of JSONL lines to tag (objects with ``source``, ``number``, ``text``;
    None passed on, blank lines skipped), entities not read: for ``nerlstm tag --input
    jsonl``."""
    for line in lines:
        if line is None:
            yield None
        elif line.text.strip():
            yield parse_record(line.text, line.source, line.number, tokenizer, spans=False)
