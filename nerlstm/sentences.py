"""Sentences inside a line of tokenized text.

The tagger learns from sentences; a paragraph read as one long "sentence" is tagged worse.
The tokenizer keeps abbreviations with their periods (``Mr.``, ``U.S.``, ``p.m.``), so a
period that stands alone ends a sentence, unless the next token starts in lower case. A long
line (a paragraph) is also cut where a date, a number, ``)``, ``:`` or ``;`` gives way to a
capitalised word: datelines and the rows of a table run together end there. On raw text
rebuilt from CoNLL-2003 test these rules found sentences better than pysbd did
(docs/results.md, "Raw text"). No torch here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Tokens that end a sentence, and those that may close it after them (quotes, brackets).
ENDINGS = frozenset({".", "!", "?", "...", "…", "?!", "!?", "。", "！", "？"})
CLOSERS = frozenset({'"', "'", "''", "”", "’", ")", "]", "»", "」", "』"})
# A dateline ends with its date: `LONDON 1996-12-06 Standings in ...`.
DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}")
# A line of more tokens than this is a paragraph, cut also after dates and numbers; in a
# shorter line (most sentences) such cuts would split names and scores apart.
PARAGRAPH_TOKENS = 60
# A sentence this long is cut even without any of those (the longest CoNLL-2003 training
# sentence has 113 tokens): the BiLSTM reads what it was trained on.
MAX_SENTENCE_TOKENS = 150


def _capitalised(token: str) -> bool:
    return token[:1].isupper()


def _row_end(token: str) -> bool:
    return bool(DATE.fullmatch(token)) or token[:1].isdigit() or token in (")", ":", ";")


def sentence_starts(tokens: Sequence[str]) -> list[int]:
    """Indices of the tokens that start a sentence: always 0 for a non-empty line.

    A sentence ends after an ending token (``.``, ``!``, ``?``...) and the quotes or brackets
    that close it, when the next token does not start in lower case; and, in a line of more
    than PARAGRAPH_TOKENS tokens, where a date, a number, ``)``, ``:`` or ``;`` is followed
    by a capitalised word.
    """
    if not tokens:
        return []
    starts = [0]
    position = 0
    paragraph = len(tokens) > PARAGRAPH_TOKENS
    while position < len(tokens):
        token = tokens[position]
        end = position + 1
        if token in ENDINGS:
            while end < len(tokens) and tokens[end] in CLOSERS:
                end += 1
            if end < len(tokens) and not tokens[end][:1].islower():
                starts.append(end)
        elif paragraph and end < len(tokens) and _capitalised(tokens[end]) and _row_end(token):
            starts.append(end)
        position = end
        if position - starts[-1] >= MAX_SENTENCE_TOKENS and position < len(tokens):
            starts.append(position)
    return starts


def split_sentences(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """``(start, end)`` token ranges of the sentences of a line, in order."""
    starts = sentence_starts(tokens)
    return list(zip(starts, starts[1:] + [len(tokens)]))
