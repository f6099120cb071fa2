"""Sentences inside a line of tokenized text.

The tagger learns from sentences; a paragraph read as one long "sentence" is tagged worse.
The tokenizer keeps abbreviations with their periods (``Mr.``, ``U.S.``, ``p.m.``), so a
period that stands alone ends a sentence, unless the next token starts in lower case; a
quote after it goes with that sentence when it closes a quotation, and with the next one
when it opens one.

A long line (a paragraph) is also cut after a dateline and where a table's rows run
together, as they do when a document is written on one line: where a date, a number, ``)``,
``:`` or ``;`` gives way to a capitalised word (``HARTFORD 12 7 6 77 76 30 | BUFFALO ...``);
before the number of a numbered list (``... 3:31.526 | 2. Marion Clignet ...``); around
column headings (``W L T GF GA PTS``); between fixtures (``KANSAS CITY AT DETROIT |
BALTIMORE AT ...``, and a run of ``X at Y`` in mixed case); where a capitalised word meets
one in capitals (``American League | DETROIT 4 ...``); before a dateline's place
(``... Yuri Kushko | TAVILDARA , Tajikistan 1996-08-30``); around a numbered heading
(``Wrexham | Division three | Brighton 1``); and before a row that starts with its date
(``v Scotland | July 16-18 v Glamorgan``). Two
``Team score`` pieces in a row stay one sentence, a match, as the corpus writes it. On raw
text rebuilt from CoNLL-2003 these rules found sentences better than pysbd did
(docs/results.md, "Raw text"). No torch here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from itertools import groupby

# Tokens that end a sentence, and those that may close it after them (quotes, brackets).
ENDINGS = frozenset({".", "!", "?", "...", "…", "?!", "!?", "。", "！", "？"})
CLOSERS = frozenset({'"', "'", "''", "”", "’", ")", "]", "»", "」", "』"})
# A dateline ends with its date: `LONDON 1996-12-06 Standings in ...`.
DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}")
# A field of a table row that does not start with a digit: `.596` (a percentage of wins),
# `-3`, `+12`.
FIELD = re.compile(r"[-+]?[.,]?\d[\d.,:/%=-]*")
# The number of an item of a numbered list, before its period (`12 .`; `6= .` for a tie).
LIST_NUMBER = re.compile(r"(\d{1,2})=?")
# A column heading: a few capitals (`W`, `PTS`, `GF`) or a slash (`G / F`); the headings of
# a table are a run of at least HEADING_TOKENS of them.
HEADING = re.compile(r"[A-Z]{1,3}|/")
HEADING_TOKENS = 3
# Words between the two teams of a fixture (`DENVER AT GREEN BAY`, `Arsenal v Chelsea`);
# the lower-case `at` of prose counts only in a run of fixtures (FIXTURE_RUN of them, each
# two names apart: `United States at Netherlands Czech Republic at Germany France at ...`).
FIXTURE_WORDS = frozenset({"AT", "v", "vs", "vs."})
FIXTURE_RUN = 3
# A heading of a results table: `Division two` (followed by the first row's team).
HEADING_NUMBERS = frozenset({"one", "two", "three", "four", "One", "Two", "Three", "Four"})
# A row of a fixture list or itinerary starts with its date: `v Scotland | July 16-18 v ...`.
MONTHS = frozenset({"January", "February", "March", "April", "May", "June", "July", "August",
                    "September", "October", "November", "December", "Jan.", "Feb.", "Aug.",
                    "Sept.", "Sep.", "Oct.", "Nov.", "Dec."})
WEEKDAYS = frozenset({"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                      "Sunday"})
DAY = re.compile(r"\d{1,2}(-\d{1,2})?")
# A place in capitals, as a dateline starts (`URUS-MARTAN`, `ST. LOUIS`).
PLACE = re.compile(r"[A-Z][A-Z.'-]*[A-Z.]")
# At most this many tokens between a dateline's place and its date (`TAVILDARA , Tajikistan`).
DATELINE_TOKENS = 5
# A line of more tokens than this is a paragraph, cut also in the ways of tables; in a
# shorter line (most sentences) such cuts would split names and scores apart.
PARAGRAPH_TOKENS = 60
# A sentence this long is cut even without any of those (the longest CoNLL-2003 training
# sentence has 113 tokens): the BiLSTM reads what it was trained on.
MAX_SENTENCE_TOKENS = 150


def _capitalised(token: str) -> bool:
    return token[:1].isupper()


def _in_capitals(token: str) -> bool:
    return len(token) > 1 and token.isalpha() and token.isupper()


def _name_word(token: str) -> bool:
    return token.isalpha() and _capitalised(token) and not token.isupper()


def _field(token: str) -> bool:
    return token[:1].isdigit() or bool(FIELD.fullmatch(token))


def _row_end(token: str) -> bool:
    return bool(DATE.fullmatch(token)) or _field(token) or token in (")", ":", ";")


def _list_number(tokens: Sequence[str], index: int, numbered: set[str]) -> bool:
    """Whether ``tokens[index]``, before a period, numbers an item of a list: the line also
    numbers the item before or after it, or a row of a table ends just before it."""
    found = LIST_NUMBER.fullmatch(tokens[index])
    if not found or index == 0:
        return False
    number = int(found.group(1))
    return (str(number - 1) in numbered or str(number + 1) in numbered
            or _row_end(tokens[index - 1]))


def _table_starts(tokens: Sequence[str], repeated: Counter) -> set[int]:
    """Sentence starts around the column headings and between the fixtures of a paragraph.

    ``repeated`` counts the line's pairs of adjacent tokens: a pair seen twice is a name
    (``NEW YORK`` in a table and again in a fixture), which no cut should split.
    """
    starts: set[int] = set()
    position = 0
    while position < len(tokens):
        end = position
        while end < len(tokens) and HEADING.fullmatch(tokens[end]):
            end += 1
        # `W L PCT GB NEW YORK 75 59`: NEW starts a name, not a column
        if (end - position > HEADING_TOKENS and end < len(tokens)
                and _in_capitals(tokens[end]) and repeated[tokens[end - 1], tokens[end]] > 1):
            end -= 1
        heading = tokens[position:end]
        # one letter at least (`W`, `L`): `BAY AT SAN` is a run of names, not of headings
        if sum(token != "/" for token in heading) >= HEADING_TOKENS \
                and any(len(token) == 1 and token != "/" for token in heading):
            starts |= {position, end}
        position = max(end, position + 1)
    fixtures = [index for index, token in enumerate(tokens)
                if token in FIXTURE_WORDS or token == "at"]

    def two_teams(pair: int) -> bool:
        """Whether fixtures[pair] and fixtures[pair + 1] have two teams between them."""
        first, second = fixtures[pair], fixtures[pair + 1]
        between = tokens[first + 1:second]
        name = _in_capitals if tokens[first] == "AT" else _name_word
        return (tokens[first] == tokens[second] and 2 <= len(between) <= 4
                and all(name(token) for token in between))

    pairs = [pair for pair in range(len(fixtures) - 1) if two_teams(pair)]
    # pairs that follow one another make a run of fixtures (n pairs: n + 1 fixture words)
    in_run = set()
    for _, numbered_run in groupby(enumerate(pairs), key=lambda item: item[1] - item[0]):
        run = [pair for _, pair in numbered_run]
        if len(run) + 1 >= FIXTURE_RUN:
            in_run.update(run)
    for pair in pairs:
        first, second = fixtures[pair], fixtures[pair + 1]
        between = tokens[first + 1:second]
        if tokens[first] == "at" and pair not in in_run:
            continue
        # two teams between two fixture words: half each, unless three words hold a name
        # of two that the line writes elsewhere too (`GREEN BAY | JACKSONVILLE`)
        middle = len(between) // 2
        if len(between) == 3 and repeated[between[0], between[1]] > 1 \
                and repeated[between[1], between[2]] < 2:
            middle = 2
        starts.add(first + 1 + middle)
    return starts


def _heading_and_date_starts(tokens: Sequence[str]) -> set[int]:
    """Sentence starts around a numbered heading (``Bolton | Division two | Blackpool 0``)
    and before a row that starts with its date (``v Scotland | July 16-18 v Glamorgan``)."""
    starts = set()
    for index in range(1, len(tokens) - 2):
        token, following = tokens[index], tokens[index + 1]
        # a word that starts its sentence (`On August 15`, `The two Iranian men`) is no row
        after_a_word = index > 1 and tokens[index - 2] not in ENDINGS
        if (_name_word(token) and following in HEADING_NUMBERS and after_a_word
                and _capitalised(tokens[index + 2])
                and any(_field(later) for later in tokens[index + 3:index + 7])):
            starts |= {index, index + 2}
        elif (token in MONTHS and DAY.fullmatch(following)
              and (_capitalised(tokens[index + 2]) or tokens[index + 2] in FIXTURE_WORDS)
              and (_name_word(tokens[index - 1]) and after_a_word or tokens[index - 1] == "'s")
              and tokens[index - 1] not in WEEKDAYS and tokens[index - 1] not in MONTHS):
            starts.add(index)
    return starts


def _dateline_starts(tokens: Sequence[str]) -> set[int]:
    """Where a dateline begins in a paragraph: its place in capitals, after a byline or any
    other token not in capitals (``... Yuri Kushko | TAVILDARA , Tajikistan 1996-08-30``)."""
    starts = set()
    for index, token in enumerate(tokens):
        if not DATE.fullmatch(token):
            continue
        first = index
        while (first > 0 and index - first < DATELINE_TOKENS
               and (tokens[first - 1] == "," or _capitalised(tokens[first - 1]))):
            first -= 1
        # the place: the first token in capitals that a comma, the date or more capitals
        # follow, but not an abbreviation ending a headline (`in U.S. | MANAGUA , Nicaragua`)
        for place in range(first, index):
            following = tokens[place + 1]
            if PLACE.fullmatch(tokens[place]) and (following in (",", token)
                                                   or PLACE.fullmatch(following)):
                if "." in tokens[place][:-1] and PLACE.fullmatch(following):
                    continue
                before = tokens[place - 1] if place else ""
                if place > 0 and not (PLACE.fullmatch(before) and "." not in before[:-1]):
                    starts.add(place)
                break
    return starts


def _team_score(piece: Sequence[str]) -> bool:
    """``Arsenal 2``, ``Queen 's Park 1``: a team and its score."""
    return (2 <= len(piece) <= 5 and piece[-1].isdigit() and len(piece[-1]) <= 3
            and _capitalised(piece[0])
            and all(_capitalised(token) or token in ("'s", "of", "de") for token in piece[:-1]))


def _matches_kept(tokens: Sequence[str], starts: list[int]) -> list[int]:
    """``starts`` without the cut inside each match: two team-score pieces in a row."""
    bounds = starts + [len(tokens)]
    kept: list[int] = []
    piece = 0
    while piece < len(starts):
        kept.append(starts[piece])
        pair = piece + 1 < len(starts) and all(
            _team_score(tokens[bounds[index]:bounds[index + 1]]) for index in (piece, piece + 1))
        piece += 2 if pair else 1
    return kept


def sentence_starts(tokens: Sequence[str]) -> list[int]:
    """Indices of the tokens that start a sentence: always 0 for a non-empty line.

    A sentence ends after an ending token (``.``, ``!``, ``?``...) and the quotes or brackets
    that close it, when the next token does not start in lower case. A line of more than
    PARAGRAPH_TOKENS tokens is also cut where the rows of a table run together (see the
    module's help).
    """
    if not tokens:
        return []
    count = len(tokens)
    paragraph = count > PARAGRAPH_TOKENS
    repeated = Counter(zip(tokens, tokens[1:]))
    numbered = {token for token, after in repeated if after == "."}
    table = (_table_starts(tokens, repeated) | _dateline_starts(tokens)
             | _heading_and_date_starts(tokens)) if paragraph else set()
    starts = [0]

    def cut(index: int) -> None:
        if starts[-1] < index < count:
            starts.append(index)

    position = 0
    quotes = 0  # the '"' before position: an even count, and the next one opens a quotation
    while position < count:
        token = tokens[position]
        end = position + 1
        if position in table:
            cut(position)
        if token in ENDINGS:
            while end < count and tokens[end] in CLOSERS:
                if tokens[end] == '"' and (quotes + tokens[position:end].count('"')) % 2 == 0:
                    break
                end += 1
            if end < count and not tokens[end][:1].islower():
                if (paragraph and token == "." and position - 1 > starts[-1]
                        and _list_number(tokens, position - 1, numbered)):
                    cut(position - 1)  # `... 3:31.674 | 3 . Lucy Tyler-Sharman`
                else:
                    cut(end)
        elif end < count and _capitalised(tokens[end]):
            following = tokens[end]
            if (paragraph and _row_end(token)
                    # `.596 - | Ssangbangwool`: a dash for a field left empty
                    or paragraph and token == "-" and position > 1
                    and _field(tokens[position - 1]) and _field(tokens[position - 2])
                    # `American League | DETROIT 4`: a heading before a row in capitals (not
                    # `The DAX index`)
                    or paragraph and _name_word(token) and position > starts[-1]
                    and _in_capitals(following) and len(following) > 2 and end + 1 < count
                    and (_field(tokens[end + 1]) or _in_capitals(tokens[end + 1]))):
                cut(end)
        quotes += tokens[position:end].count('"')
        position = end
        if position - starts[-1] >= MAX_SENTENCE_TOKENS and position < count:
            starts.append(position)
    return _matches_kept(tokens, starts) if paragraph else starts


def split_sentences(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """``(start, end)`` token ranges of the sentences of a line, in order."""
    starts = sentence_starts(tokens)
    return list(zip(starts, starts[1:] + [len(tokens)]))
