"""Sentences inside a line of tokenized text.

The tagger learns from sentences; a paragraph read as one long "sentence" is tagged worse.
The tokenizer keeps abbreviations with their periods (``Mr.``, ``U.S.``, ``p.m.``), so a
period that stands alone ends a sentence, unless the next token starts in lower case. No
torch here.
"""

from __future__ import annotations

from collections.abc import Sequence

# Tokens that end a sentence, and those that may close it after them (quotes, brackets).
ENDINGS = frozenset({".", "!", "?", "...", "…", "?!", "!?", "。", "！", "？"})
CLOSERS = frozenset({'"', "'", "''", "”", "’", ")", "]", "»", "」", "』"})
# A sentence this long is cut even without an ending (the longest CoNLL-2003 training
# sentence has 113 tokens): the BiLSTM reads what it was trained on.
MAX_SENTENCE_TOKENS = 150


def sentence_starts(tokens: Sequence[str]) -> list[int]:
    """Indices of the tokens that start a sentence: always 0 for a non-empty line.

    A sentence ends after an ending token (``.``, ``!``, ``?``...) and the quotes or brackets
    that close it, when the next token does not start in lower case.
    """
    if not tokens:
        return []
    starts = [0]
    position = 0
    while position < len(tokens):
        if tokens[position] in ENDINGS:
            end = position + 1
            while end < len(tokens) and tokens[end] in CLOSERS:
                end += 1
            if end < len(tokens) and not tokens[end][:1].islower():
                starts.append(end)
            position = end
        else:
            position += 1
        if position - starts[-1] >= MAX_SENTENCE_TOKENS and position < len(tokens):
            starts.append(position)
    return starts


def split_sentences(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """``(start, end)`` token ranges of the sentences of a line, in order."""
    starts = sentence_starts(tokens)
    return list(zip(starts, starts[1:] + [len(tokens)]))
