"""Input records to tag, the loop that tags them in batches, and the output formats.

No torch here: the records, :func:`tag_records` and the formatters serve any tagger with
``tag()``, ``encoder`` and ``workers`` (:class:`nerlstm.tagging.Tagger`, or the ONNX
tagger of :mod:`nerlstm.onnx_tagger`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nerlstm import schemes
from nerlstm.batching import context_numbering
from nerlstm.conll import Between, TokenLines, read_columns
from nerlstm.results import Span, TaggedText, Token
from nerlstm.textio import PAUSE, Line

if TYPE_CHECKING:
    from nerlstm.tagging import Tagger

# Document pooling runs over whole contexts of at least this many batches' sentences at a
# time: the pooled states of a chunk are all held at once, so the chunk bounds the memory,
# while a chunk of a few batches is already as fast as a larger one.
DOCUMENT_CHUNK_BATCHES = 2


@dataclass
class Entity:
    """An entity found by the tagger: tokens ``start`` up to ``end``."""

    type: str
    start: int
    end: int
    score: float | None = None


@dataclass
class Tagged:
    """One sentence's result: IOB2 tags and the entities they make."""

    tags: list[str]
    entities: list[Entity]


@dataclass
class Record:
    """One unit of input to tag: a line of text or tokens, or a sentence of a column file.

    Attributes:
        text: the line as given (tokens joined by spaces for column input).
        tokens: (token, start, end) with ``text[start:end] == token``.
        rows: for column input, the columns of each token line.
        before: for column input, the lines before the sentence (blank, -DOCSTART-) that
            no earlier record holds: those at the start of the input or after a pause.
        after: for column input, the lines that followed the sentence.
        document: the document it belongs to: counted by -DOCSTART- lines for column
            input, by blank lines for text with paragraphs, else each line is its own.
        line: for column input, the 1-based line of its source that the sentence starts on.
        sentences: the (start, end) token ranges of its sentences, when it holds more than
            one (a line of text may); None: the record is one sentence.
    """

    text: str
    tokens: list[tuple[str, int, int]]
    rows: list[list[str]] | None = None
    before: list[Between] = field(default_factory=list)
    after: list[Between] = field(default_factory=list)
    document: int = 0
    line: int = 0
    sentences: list[tuple[int, int]] | None = None

    def sentence_ranges(self) -> list[tuple[int, int]]:
        return self.sentences if self.sentences is not None else [(0, len(self.tokens))]


def line_records(lines: Iterable[Line | None], kind: str, *, lines_alone: bool = False,
                 tokenizer: str = "default") -> Iterator[Record | None]:
    """Records of ``text`` or ``tokens`` input: one per line, PAUSE passed on.

    The lines up to a blank line are one document (with ``lines_alone``, each line is a
    document of its own). A line of text is tokenized by ``tokenizer`` and may hold several
    sentences; a line of tokens is one sentence.
    """
    from nerlstm.sentences import split_sentences
    from nerlstm.tokenizer import tokenizer_for

    split = tokenizer_for(tokenizer) if kind == "text" else tokenizer_for("whitespace")
    document = 0
    for line in lines:
        if line is PAUSE:
            yield PAUSE
            continue
        blank = not line.text.strip()
        document += blank or lines_alone
        tokens = split(line.text)
        sentences = None
        if kind == "text" and not lines_alone:
            ranges = split_sentences([token for token, _, _ in tokens])
            sentences = ranges if len(ranges) > 1 else None
        yield Record(line.text, tokens, document=document, line=line.number,
                     sentences=sentences)


def input_records(lines: Iterable[Line | None], kind: str, *, token_column: int = 0,
                  lines_alone: bool = False, tokenizer: str = "default"
                  ) -> Iterator[Record | None]:
    """The records of `nerlstm tag`'s input: ``kind`` is ``text``, ``tokens``, ``conll`` or
    ``jsonl`` (see :func:`line_records`, :func:`column_records` and :func:`jsonl_records`)."""
    if kind == "conll":
        return column_records(lines, token_column)
    if kind == "jsonl":
        return jsonl_records(lines, tokenizer)
    return line_records(lines, kind, lines_alone=lines_alone, tokenizer=tokenizer)


def text_record(text: str, tokenizer: str = "default") -> Record:
    """One text as one document: each of its lines tokenized and cut into sentences, the
    offsets into the whole text."""
    from nerlstm.jsonl import text_tokens

    tokens, sentences = text_tokens(text, tokenizer)
    return Record(text, tokens, sentences=sentences)


def jsonl_records(lines: Iterable[Line | None], tokenizer: str = "default"
                  ) -> Iterator[Record | None]:
    """Records of JSONL input, one per object: its text cut by ``tokenizer`` (or its own
    tokens), consecutive objects with one document id read as one document; PAUSE passed
    on."""
    from nerlstm.jsonl import jsonl_texts

    document, previous = 0, object()
    for found in jsonl_texts(lines, tokenizer):
        if found is PAUSE:
            yield PAUSE
            continue
        if not found.has_document or found.document != previous:
            document += 1
        previous = found.document if found.has_document else object()
        yield Record(found.text, found.tokens, document=document, line=found.line,
                     sentences=found.sentences)


def sentence_records(sentences: Iterable) -> Iterator[Record]:
    """Records of sentences already read (a Hugging Face dataset's tokens), one each, with
    their documents."""
    for sentence in sentences:
        tokens, offset = [], 0
        for token in sentence.tokens:
            tokens.append((token, offset, offset + len(token)))
            offset += len(token) + 1
        yield Record(" ".join(sentence.tokens), tokens, document=sentence.document,
                     line=sentence.line)


def column_records(lines: Iterable[Line | None], token_column: int = 0
                   ) -> Iterator[Record | None]:
    """Sentences of a column file, read by the rules of :func:`nerlstm.conll.parse_conll`
    (with its errors), each with the blank and -DOCSTART- lines around it; PAUSE passed on.

    The lines between two sentences go with the first, so that every record holds a
    sentence; only those at the start of the input, or after a sentence answered at a
    pause, go with the next one. A record without a sentence is made only for the lines
    that end an input with no sentence after them.
    """
    held: Record | None = None  # a sentence read, waiting for the lines after it
    between: list[Between] = []
    document = 0
    for found in read_columns(lines):
        if isinstance(found, Between):
            between.append(found)
            continue
        if held is not None:
            held.after, between = between, []
            yield held
            held = None
        if found is PAUSE:
            yield PAUSE
            continue
        held = _column_record(found, token_column, between)
        between, document = [], found.document
    if held is not None:
        held.after = between
        yield held
    elif between:
        yield Record("", [], rows=[], before=between, document=document)


def _column_record(found: TokenLines, token_column: int, before: list[Between]) -> Record:
    token_index, _ = found.column_indices(token_column, None)
    tokens, offset = [], 0
    for columns in found.rows:
        token = columns[token_index]
        tokens.append((token, offset, offset + len(token)))
        offset += len(token) + 1
    return Record(" ".join(token for token, _, _ in tokens), tokens, found.rows, before,
                  document=found.document, line=found.line)


def tag_records(tagger: Tagger, records: Iterable[Record | None], *, batch_size: int = 256,
                scores: bool = False) -> Iterator[tuple[Record, Tagged]]:
    """Tag records in batches, in input order; a PAUSE answers the records held so far.

    Records of one context (a document, cut as :func:`nerlstm.batching.context_ids` cuts
    it) are tagged together, as ``eval`` reads them, unless a PAUSE comes between them.
    """
    # A block goes to the tagger once it holds a document chunk for each worker thread, so
    # that every worker has a whole chunk to pool: smaller blocks leave workers idle.
    block = batch_size * DOCUMENT_CHUNK_BATCHES * max(1, tagger.workers)
    pending: list[Record] = []
    token_lists: list[list[str]] = []  # the sentences of the pending records
    contexts: list[int] = []
    context_of, context = context_numbering(), -1

    def flush() -> Iterator[tuple[Record, Tagged]]:
        results = iter(tagger.tag(token_lists, batch_size, scores=scores, contexts=contexts))
        for record in pending:
            yield record, joined([next(results) for _ in nonempty_ranges(record)], record)
        pending.clear()
        token_lists.clear()
        contexts.clear()
        tagger.encoder.trim_caches()

    for record in records:
        if record is PAUSE:
            if pending:
                yield from flush()
            continue
        # as in eval, where -DOCSTART- and blank lines are no sentences, empty ones are skipped
        ranges = nonempty_ranges(record)
        own = [context_of(record.document) for _ in ranges]
        if own and own[0] != context and len(token_lists) >= block:
            yield from flush()  # between records only: a record's sentences go together
        context = own[-1] if own else context
        token_lists += [[token for token, _, _ in record.tokens[start:end]]
                        for start, end in ranges]
        contexts += own
        pending.append(record)
    if pending:
        yield from flush()


def nonempty_ranges(record: Record) -> list[tuple[int, int]]:
    return [(start, end) for start, end in record.sentence_ranges() if end > start]


def joined(parts: list[Tagged], record: Record) -> Tagged:
    """The results of a record's sentences as one result over all its tokens."""
    if len(parts) == 1:
        return parts[0]
    tags: list[str] = []
    entities: list[Entity] = []
    for part, (start, _) in zip(parts, nonempty_ranges(record)):
        tags += part.tags
        entities += [Entity(e.type, e.start + start, e.end + start, e.score)
                     for e in part.entities]
    return Tagged(tags, entities)


def keep_confident(tagged: Tagged, min_score: float) -> Tagged:
    """Drop entities scored below ``min_score``, and their tags."""
    kept = [e for e in tagged.entities if e.score is None or e.score >= min_score]
    if len(kept) == len(tagged.entities):
        return tagged
    spans = [schemes.Span(e.type, e.start, e.end) for e in kept]
    return Tagged(schemes.tags_from_spans(spans, len(tagged.tags), "iob2"), kept)


def format_inline(record: Record, tagged: Tagged) -> str:
    """The line with entities in brackets, ``[PER Peter Blackburn] visited [LOC Paris] .``,
    keeping the text between entities as it was."""
    text, tokens = record.text, record.tokens
    pieces, position = [], 0
    for entity in tagged.entities:
        start, end = tokens[entity.start][1], tokens[entity.end - 1][2]
        pieces += [text[position:start], f"[{entity.type} ", text[start:end], "]"]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def format_conll(record: Record, tagged: Tagged) -> str:
    """Token and tag per line, then a blank line; an empty line gives one blank line.

    Column input keeps its lines in place: each token line with the tag appended, each
    -DOCSTART- line with an O, each blank line blank.
    """
    if record.rows is None:
        lines = [f"{token} {tag}" for (token, _, _), tag in zip(record.tokens, tagged.tags)]
        return "\n".join(lines + [""])
    lines = [_between_line(line) for line in record.before]
    lines += [" ".join(columns + [tag]) for columns, tag in zip(record.rows, tagged.tags)]
    lines += [_between_line(line) for line in record.after]
    return "\n".join(lines)


def _between_line(line: Between) -> str:
    return line.text.rstrip() + " O" if line.docstart else ""


def tagged_text(record: Record, tagged: Tagged) -> TaggedText:
    """A record's result as plain data, entities with character offsets into its text."""
    tokens = record.tokens
    entities = []
    for entity in tagged.entities:
        start, end = tokens[entity.start][1], tokens[entity.end - 1][2]
        entities.append(Span(start, end, entity.type, record.text[start:end], entity.score))
    column_input = record.rows is not None
    return TaggedText(record.text, entities,
                      [Token(token, start, end, tag)
                       for (token, start, end), tag in zip(tokens, tagged.tags)],
                      document=record.document if column_input else None,
                      line=record.line if column_input else None)


def format_json(record: Record, tagged: Tagged) -> str:
    """One JSON object: the text, its entities with character offsets, its tokens; for
    column input also its document and the line its sentence starts on."""
    values = tagged_text(record, tagged).to_dict()
    for entity in values["entities"]:
        if entity["score"] is not None:
            entity["score"] = round(entity["score"], 4)
    return json.dumps(values, ensure_ascii=False)


FORMATTERS = {"inline": format_inline, "conll": format_conll, "jsonl": format_json}
