"""Tests of the raw-text tokenizer: CoNLL-2003 token boundaries and exact character offsets."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerlstm.tokenizer import SEPARATOR_CHARS, tokenize


def _is_separator(char: str) -> bool:
    return char.isspace() or char in SEPARATOR_CHARS


def _words(text: str) -> list[str]:
    return [token for token, _, _ in tokenize(text)]


# Each rule of the tokenizer, as input line -> expected tokens.
CASES = [
    # Separators: any Unicode whitespace, plus U+200B and a byte-order mark.
    ("EU rejects German call", ["EU", "rejects", "German", "call"]),
    ("  EU\trejects\u00a0German\u3000call\r", ["EU", "rejects", "German", "call"]),
    ("line end\r\n", ["line", "end"]),
    ("\ufeffEU rejects", ["EU", "rejects"]),
    ("zero\u200bwidth", ["zero", "width"]),
    # Punctuation apart.
    ("House.", ["House", "."]),
    ("(Reuters)", ["(", "Reuters", ")"]),
    ("Yes, no; maybe: why? Go!", ["Yes", ",", "no", ";", "maybe", ":", "why", "?", "Go", "!"]),
    ("[1] {x}", ["[", "1", "]", "{", "x", "}"]),
    ('"Quoted," he said.', ['"', "Quoted", ",", '"', "he", "said", "."]),
    (
        "\u201cHi,\u201d she said, \u2018fine\u2019 \u00aboui\u00bb",
        ["\u201c", "Hi", ",", "\u201d", "she", "said", ",", "\u2018", "fine", "\u2019"]
        + ["\u00ab", "oui", "\u00bb"],
    ),
    ("Wait... what?!", ["Wait", "...", "what", "?", "!"]),
    ("Hello\u2026 bye", ["Hello", "\u2026", "bye"]),
    ("one -- two\u2014three - four", ["one", "--", "two", "\u2014", "three", "-", "four"]),
    ("**Note**", ["**", "Note", "**"]),
    # Clitics apart, Penn Treebank style, with either apostrophe.
    ("Peter's", ["Peter", "'s"]),
    ("don't", ["do", "n't"]),
    ("I'm sure they're here", ["I", "'m", "sure", "they", "'re", "here"]),
    ("we've he'll I'd", ["we", "'ve", "he", "'ll", "I", "'d"]),
    ("can't DON'T", ["ca", "n't", "DO", "N'T"]),
    ("Peter\u2019s don\u2019t", ["Peter", "\u2019s", "do", "n\u2019t"]),
    ("players' union", ["players", "'", "union"]),
    ("the players\u2019 union", ["the", "players", "\u2019", "union"]),
    ("Hewlett-Packard's U.S.'s", ["Hewlett-Packard", "'s", "U.S.", "'s"]),
    # Apostrophes inside names and elisions are not clitics.
    ("O'Neill rock'n'roll gov't", ["O'Neill", "rock'n'roll", "gov't"]),
    ("'quoted'", ["'", "quoted", "'"]),
    # Numbers and hyphenated words whole; per cent and currency signs apart.
    ("1,000.50 3.5", ["1,000.50", "3.5"]),
    ("-2 degrees (-0.5)", ["-2", "degrees", "(", "-0.5", ")"]),
    ("a 10-year-old Hewlett-Packard", ["a", "10-year-old", "Hewlett-Packard"]),
    ("won 1-0 , 4-6 6-3", ["won", "1-0", ",", "4-6", "6-3"]),
    ("LONDON 1996-08-30", ["LONDON", "1996-08-30"]),
    ("up 5%", ["up", "5", "%"]),
    ("$5 or US$5.2 million", ["$", "5", "or", "US$", "5.2", "million"]),
    ("at 10:30 , 1/2 of AT&T", ["at", "10:30", ",", "1/2", "of", "AT&T"]),
    ("1. Germany 10 points", ["1.", "Germany", "10", "points"]),
    ("pre- and post-war", ["pre-", "and", "post-war"]),
    # Abbreviations keep their periods.
    ("U.S. and U.N. officials", ["U.S.", "and", "U.N.", "officials"]),
    ("Ph.D. students, e.g. these", ["Ph.D.", "students", ",", "e.g.", "these"]),
    ("J. Smith and J.R.R. Tolkien", ["J.", "Smith", "and", "J.R.R.", "Tolkien"]),
    (
        "Mr. Jones of Acme Inc. met Dr. Who on Jan. 5",
        ["Mr.", "Jones", "of", "Acme", "Inc.", "met", "Dr.", "Who", "on", "Jan.", "5"],
    ),
    ("Oakland, Calif., said", ["Oakland", ",", "Calif.", ",", "said"]),
    ("apples vs. oranges etc.", ["apples", "vs.", "oranges", "etc."]),
    ("the U.S.-led force", ["the", "U.S.-led", "force"]),
    # A sentence-final abbreviation stays whole and gets no extra period ...
    ("He moved to the U.S.", ["He", "moved", "to", "the", "U.S."]),
    # ... but a capital letter ending the line is not an initial, nor is "I." after a word.
    ("in group B.", ["in", "group", "B", "."]),
    ("so did I. Then", ["so", "did", "I", ".", "Then"]),
    ("the end.", ["the", "end", "."]),
    # URLs, e-mail addresses, mentions and hashtags whole; sentence punctuation apart.
    ("Visit www.example.com.", ["Visit", "www.example.com", "."]),
    (
        "See https://example.com/a/b?q=1&r=2, then",
        ["See", "https://example.com/a/b?q=1&r=2", ",", "then"],
    ),
    (
        "(http://en.wikipedia.org/wiki/Foo_(bar))",
        ["(", "http://en.wikipedia.org/wiki/Foo_(bar)", ")"],
    ),
    ("Mail john.doe@reuters.com.", ["Mail", "john.doe@reuters.com", "."]),
    ("Follow @Reuters #breaking!", ["Follow", "@Reuters", "#breaking", "!"]),
    # Letters with combining marks, and emoji sequences, are not cut apart.
    ("Caf\u00e9 S\u00e3o Paulo \u00dcnal's", ["Caf\u00e9", "S\u00e3o", "Paulo", "\u00dcnal", "'s"]),
    ("cafe\u0301 ok", ["cafe\u0301", "ok"]),
    ("Great \U0001f44d\U0001f3fd match", ["Great", "\U0001f44d\U0001f3fd", "match"]),
    (
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467!",
        ["family", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "!"],
    ),
    ("\U0001f1e9\U0001f1ea wins", ["\U0001f1e9\U0001f1ea", "wins"]),
    # Nothing to tokenise.
    ("", []),
    ("   \t\r\n", []),
    ("\u200b\ufeff ", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[repr(text) for text, _ in CASES])
def test_tokens(text: str, expected: list[str]) -> None:
    assert _words(text) == expected


@pytest.mark.parametrize("text", [text for text, _ in CASES], ids=[repr(t) for t, _ in CASES])
def test_offsets_slice_back(text: str) -> None:
    for token, start, end in tokenize(text):
        assert text[start:end] == token


def test_offsets_are_python_slice_offsets() -> None:
    text = "  (U.S.)\tdon't \U0001f44d\U0001f3fd cafe\u0301\r"
    assert tokenize(text) == [
        ("(", 2, 3),
        ("U.S.", 3, 7),
        (")", 7, 8),
        ("do", 9, 11),
        ("n't", 11, 14),
        ("\U0001f44d\U0001f3fd", 15, 17),
        ("cafe\u0301", 18, 23),
    ]


def _assert_well_formed(text: str, tokens: list[tuple[str, int, int]]) -> None:
    """Every token is a non-empty slice, in order, and only separators lie between them."""
    previous_end = 0
    for token, start, end in tokens:
        assert token
        assert text[start:end] == token
        assert not any(_is_separator(char) for char in token)
        assert previous_end <= start < end
        assert all(_is_separator(char) for char in text[previous_end:start])
        previous_end = end
    assert all(_is_separator(char) for char in text[previous_end:])
    kept = "".join(char for char in text if not _is_separator(char))
    assert "".join(token for token, _, _ in tokens) == kept


@settings(deadline=None)  # the first call builds the pattern
@given(st.text())
def test_any_text_gives_well_formed_tokens(text: str) -> None:
    _assert_well_formed(text, tokenize(text))


# Pieces that set the rules against each other when strung together at random.
_PIECES = [
    "a", "B", "n", "t", "s", "1", "0", ".", ",", ":", "-", "'", "\u2019", "n't", "'s", "@",
    "#", "$", "%", "&", "/", "(", ")", '"', "http://", "www.", "U.S.", "Inc.", "J.", "US$",
    "...", "--", "\u0301", "\u200d", "\U0001f44d", "\U0001f3fd", "\U0001f1e9", " ", "\t",
    "\u200b", "\ufeff", "\u00a0",
]  # fmt: skip


@settings(deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_rule_mixtures_give_well_formed_tokens(text: str) -> None:
    _assert_well_formed(text, tokenize(text))


@settings(deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_surrounding_whitespace_changes_only_offsets(text: str) -> None:
    # Rules that look at the end of the line, or before a token, must see through it.
    padded = [(token, start + 2, end + 2) for token, start, end in tokenize(text)]
    assert tokenize(" \t" + text + "\u200b \r\n") == padded


# Long lines built to make a backtracking pattern slow; each takes milliseconds when the
# scan stays linear, and many seconds if it turns quadratic.
_LONG_LINES = [
    "a+" * 10_000,
    "x@" * 10_000,
    "#" * 20_000,
    "A.)" * 7_000,
    "a.b" * 7_000,
    "ab." * 7_000 + "x",
    "http://a" + "." * 20_000 + "b",
    "http://" + "(" * 20_000,
    "word" + " " * 20_000,
    " " * 20_000 + "word",
    "'s" * 10_000,
    "a- " * 7_000,
    "\u200d" * 20_000,
]


@pytest.mark.parametrize("text", _LONG_LINES, ids=[repr(text[:8]) for text in _LONG_LINES])
def test_long_lines_take_linear_time(text: str) -> None:
    tokenize("warm up")
    started = time.perf_counter()
    tokens = tokenize(text)
    elapsed = time.perf_counter() - started
    _assert_well_formed(text, tokens)
    assert elapsed < 2.0


_ASCII_PIECES = [piece for piece in _PIECES if piece.isascii()]


@settings(deadline=None)
@given(st.one_of(st.text(st.characters(max_codepoint=127)),
                 st.lists(st.sampled_from(_ASCII_PIECES), max_size=30).map("".join)))
def test_the_ascii_pattern_tokenizes_ascii_text_as_the_full_one(text: str) -> None:
    from nerlstm.tokenizer import _token_pattern

    def tokens(pattern) -> list[tuple[str, int, int]]:
        return [(match[1], *match.span(1)) for match in pattern.finditer(text)]

    assert tokens(_token_pattern(ascii_only=True)) == tokens(_token_pattern(ascii_only=False))


def test_ascii_and_other_lines_both_tokenize() -> None:
    assert _words("Smith's U.S. cafe.") == ["Smith", "'s", "U.S.", "cafe", "."]
    assert _words("Smith's U.S. cafe\u0301.") == ["Smith", "'s", "U.S.", "cafe\u0301", "."]
