"""Label maps: rename, merge and drop entity types as data is read.

A map is given inline (``person=PER,location=LOC,group=ORG``) or as a file of ``from=to``
lines (``#`` starts a comment). ``=O`` or an empty target drops the type; types the map does
not name are kept as they are. No torch here.
"""

from __future__ import annotations

import os

from nerlstm import schemes
from nerlstm.conll import Sentence, read_text
from nerlstm.errors import NerlstmError

DROP = ("", "O")


def parse_label_map(spec: str) -> dict[str, str | None]:
    """The map a ``--label-map`` value gives: type -> new type, or None to drop it.

    Raises:
        NerlstmError: on an entry that is not ``from=to`` (naming the file and line for a
            file), or a missing file.
    """
    if os.path.isfile(spec) or "=" not in spec:
        if not os.path.exists(spec):
            raise NerlstmError("--label-map: no such file, and no from=to entries: expected a "
                               "file or a map such as person=PER,location=LOC", path=spec,
                               exit_code=2)
        text = read_text(spec)
        entries = [(number, line.split("#", 1)[0].strip())
                   for number, line in enumerate(text.split("\n"), start=1)]
        path: str | None = spec
    else:
        entries = [(None, item.strip()) for item in spec.split(",")]
        path = None
    mapping: dict[str, str | None] = {}
    for number, entry in entries:
        if not entry:
            continue
        source, equals, target = (part.strip() for part in entry.partition("="))
        if not equals or not source or any(char.isspace() for char in source + target):
            raise NerlstmError(f"label map entry {entry!r}: expected from=to (to =O drops the "
                               f"type), e.g. person=PER,location=LOC", path=path, line=number,
                               exit_code=2)
        if source in mapping and mapping[source] != (None if target in DROP else target):
            raise NerlstmError(f"label map: {source} is mapped twice", path=path, line=number,
                               exit_code=2)
        mapping[source] = None if target in DROP else target
    if not mapping:
        raise NerlstmError("the label map is empty: expected from=to entries", path=path,
                           exit_code=2)
    return mapping


def apply_label_map(sentences: list[Sentence], mapping: dict[str, str | None],
                    scheme: str) -> list[str]:
    """Rewrite each sentence's tags with the map, in ``scheme``; returns warnings (types the
    map names that the data never holds)."""
    seen: set[str] = set()
    for sentence in sentences:
        if sentence.tags is None:
            continue
        kept = []
        for span in schemes.spans(sentence.tags):
            seen.add(span.type)
            target = mapping.get(span.type, span.type)
            if target is not None:
                kept.append(span._replace(type=target))
        # iob1 and iob2 both write from spans; an unknown scheme (no entities) gives iob2
        written = scheme if scheme in ("iob1", "iob2", "bioes") else "iob2"
        sentence.tags = schemes.tags_from_spans(kept, len(sentence.tags), written)
    unused = sorted(set(mapping) - seen)
    if unused:
        return [f"label map: types the data never holds: {', '.join(unused)}"]
    return []
