"""Tag schemes (IOB1, IOB2, BIOES): validation, detection, spans, conversion, transitions.

Spans are read the way conlleval reads chunks, so that ``I-X`` after ``O`` starts an entity in
every scheme; reading IOB1 and IOB2 therefore gives the same spans, and scores agree with
conlleval and seqeval's default mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from nerlstm.errors import NerlstmError

OUTSIDE = "O"
_PREFIXES = frozenset("BIES")


class Span(NamedTuple):
    """An entity: tokens ``start`` up to, not including, ``end``."""

    type: str
    start: int
    end: int


def split_tag(tag: str) -> tuple[str, str]:
    """Return (prefix, type); ``("O", "")`` for the outside tag."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    return tag[0], tag[2:]


def is_valid_tag(tag: str) -> bool:
    return tag == OUTSIDE or (len(tag) > 2 and tag[0] in _PREFIXES and tag[1] == "-")


def check_tags(tags: Sequence[str], *, path: str, line: int) -> None:
    """Raise a user error naming the line of the first tag that fits no scheme."""
    for offset, tag in enumerate(tags):
        if not is_valid_tag(tag):
            hint = (" (tags without a prefix, as in the IO scheme, are not read: "
                    "write I-TYPE for them)" if tag.isalpha() and tag != OUTSIDE else "")
            raise NerlstmError(
                f"tag '{tag}' fits no scheme: expected O or B-, I-, E-, S- followed by a type"
                f"{hint}", path=path, line=line + offset)


def detect_scheme(tag_sequences: Sequence[Sequence[str]]) -> str:
    """Guess the scheme of tagged sentences: 'bioes', 'iob1' or 'iob2'.

    E- or S- tags mean BIOES. Otherwise the scheme that starts more entities the way it
    should wins: IOB1 starts them with I- (B- only between two adjacent entities of one
    type), IOB2 with B-. Counting, rather than stopping at the first I- after O, keeps a
    stray error in an IOB2 corpus (CoNLL-2002 has one per split) from flipping the verdict.
    """
    starts_with_b = starts_with_i = 0
    for tags in tag_sequences:
        previous = OUTSIDE
        for tag in tags:
            prefix, kind = split_tag(tag)
            if prefix in ("E", "S"):
                return "bioes"
            if prefix == "B":
                starts_with_b += 1
            elif prefix == "I" and split_tag(previous)[1] != kind:
                starts_with_i += 1
            previous = tag
    return "iob1" if starts_with_i > starts_with_b else "iob2"


def _ends_chunk(previous: str, current: str) -> bool:
    prev_prefix, prev_type = split_tag(previous)
    prefix, kind = split_tag(current)
    if prev_prefix in ("E", "S"):
        return True
    if prev_prefix in ("B", "I") and prefix in ("B", "S", OUTSIDE):
        return True
    return prev_prefix != OUTSIDE and prev_type != kind


def _starts_chunk(previous: str, current: str) -> bool:
    prev_prefix, prev_type = split_tag(previous)
    prefix, kind = split_tag(current)
    if prefix in ("B", "S"):
        return True
    if prefix in ("I", "E") and prev_prefix in ("E", "S", OUTSIDE):
        return True
    return prefix != OUTSIDE and prev_type != kind


def spans(tags: Sequence[str]) -> list[Span]:
    """Entities in a tag sequence of any scheme, read as conlleval reads them."""
    found: list[Span] = []
    start = None
    previous = OUTSIDE
    for index, tag in enumerate(list(tags) + [OUTSIDE]):
        if tag == OUTSIDE and start is None:
            previous = tag  # outside after outside or an ended chunk: nothing starts or ends
            continue
        if start is not None and _ends_chunk(previous, tag):
            found.append(Span(split_tag(previous)[1], start, index))
            start = None
        if _starts_chunk(previous, tag):
            start = index
        previous = tag
    return found


def tags_from_spans(entities: Sequence[Span], length: int, scheme: str) -> list[str]:
    """Write non-overlapping spans as tags of ``scheme``."""
    tags = [OUTSIDE] * length
    previous_end, previous_type = -1, None
    for kind, start, end in sorted(entities, key=lambda span: span.start):
        if scheme == "bioes":
            if end - start == 1:
                tags[start] = f"S-{kind}"
            else:
                tags[start] = f"B-{kind}"
                tags[start + 1:end - 1] = [f"I-{kind}"] * (end - start - 2)
                tags[end - 1] = f"E-{kind}"
        else:
            tags[start:end] = [f"I-{kind}"] * (end - start)
            if scheme == "iob2" or (start == previous_end and kind == previous_type):
                tags[start] = f"B-{kind}"
        previous_end, previous_type = end, kind
    return tags


def convert(tags: Sequence[str], scheme: str) -> list[str]:
    """The same entities, written in ``scheme``."""
    return tags_from_spans(spans(tags), len(tags), scheme)


def tag_set(types: Sequence[str], scheme: str) -> list[str]:
    """All tags of a scheme over the given entity types, ``O`` first."""
    prefixes = {"iob1": "BI", "iob2": "BI", "bioes": "BIES"}[scheme]
    return [OUTSIDE] + [f"{prefix}-{kind}" for kind in sorted(types) for prefix in prefixes]


def allowed_transitions(tags: Sequence[str], scheme: str
                        ) -> tuple[list[bool], list[bool], list[list[bool]]]:
    """Which tag sequences are well formed in ``scheme``.

    Returns:
        (may_start, may_end, may_follow) where ``may_follow[i][j]`` says that tag ``j`` may
        come right after tag ``i``.
    """
    parsed = [split_tag(tag) for tag in tags]

    def follows(previous: tuple[str, str], current: tuple[str, str]) -> bool:
        (prev_prefix, prev_type), (prefix, kind) = previous, current
        inside_entity = prev_prefix in ("B", "I") if scheme == "bioes" else False
        if scheme == "bioes":
            if inside_entity:  # an open entity must go on or end, as the same type
                return prefix in ("I", "E") and kind == prev_type
            return prefix in (OUTSIDE, "B", "S")
        if scheme == "iob2":
            return prefix != "I" or (prev_prefix in ("B", "I") and kind == prev_type)
        # iob1: B- only separates two adjacent entities of the same type
        return prefix != "B" or (prev_prefix in ("B", "I") and kind == prev_type)

    outside = (OUTSIDE, "")
    may_start = [follows(outside, tag) for tag in parsed]
    may_end = [follows(tag, outside) for tag in parsed]
    may_follow = [[follows(previous, tag) for tag in parsed] for previous in parsed]
    return may_start, may_end, may_follow
