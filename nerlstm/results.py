"""What tagging gives back: plain data, the same in Python, in `tag -f jsonl` and as JSON.

No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Span:
    """An entity: ``text[start:end]`` of the tagged text, with its label and probability.

    Attributes:
        start: character offset where the entity starts.
        end: character offset just past its end.
        label: its type (``PER``, ``LOC``...).
        text: the entity's text, ``text[start:end]``.
        score: the CRF's probability of exactly this span with this label (None when not
            computed).
    """

    start: int
    end: int
    label: str
    text: str
    score: float | None = None


@dataclass
class Token:
    """A token with its character offsets and its IOB2 tag."""

    text: str
    start: int
    end: int
    tag: str


@dataclass
class TaggedText:
    """A tagged text: its entities and its tokens, offsets into ``text``.

    Attributes:
        text: the text as given.
        entities: the entities found, in order.
        tokens: every token, in order.
        document: for column input, the document number (counted by -DOCSTART- lines).
        line: the 1-based input line the text starts on, where it came from a file.
    """

    text: str
    entities: list[Span] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    document: int | None = None
    line: int | None = None

    @property
    def ents(self) -> list[Span]:
        """The entities (spaCy's name for them)."""
        return self.entities

    def to_dict(self, scores: bool = True) -> dict:
        """As `nerlstm tag -f jsonl` writes it (document and line only where known);
        ``scores`` False: every entity's score None.

        Built field by field: ``dataclasses.asdict`` deep-copies every value, and took 11%
        of the server's tagging thread on one-sentence requests."""
        values: dict = {"text": self.text}
        if self.document is not None:
            values["document"] = self.document
        if self.line is not None:
            values["line"] = self.line
        values["entities"] = [{"start": span.start, "end": span.end, "label": span.label,
                               "text": span.text, "score": span.score if scores else None}
                              for span in self.entities]
        values["tokens"] = [{"text": token.text, "start": token.start, "end": token.end,
                             "tag": token.tag} for token in self.tokens]
        return values
