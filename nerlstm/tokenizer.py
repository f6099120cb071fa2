"""Splitting one line of raw text into CoNLL-2003-style tokens, with character offsets.

The CoNLL-2003 English corpus is Reuters news tokenised much like the Penn Treebank:
punctuation and clitics stand apart ("Peter's" -> "Peter" "'s", "don't" -> "do" "n't"),
while numbers, hyphenated words, abbreviations ("U.S.", "Corp.", "J."), currency prefixes
("US$"), URLs and e-mail addresses stay whole.  :func:`tokenize` follows those conventions
for text the tagger has never seen and keeps, for each token, where it lies in the line,
so that tags can be mapped back onto the original text.

All the rules live in one compiled regular expression whose alternatives are tried in
order at each position; the first that matches gives the token.  Its last alternative
takes any single visible character, so every character that is not a separator ends up
in exactly one token and no input can make the tokenizer fail.

Separators are Unicode whitespace (``str.isspace``) plus U+200B ZERO WIDTH SPACE and
U+FEFF (a byte-order mark left at the start of a line); neither of the two invisible ones
belongs inside a word that is looked up in a vocabulary.
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["SEPARATOR_CHARS", "tokenize"]

#: Characters that separate tokens and belong to none, besides ``str.isspace`` ones.
SEPARATOR_CHARS = "\u200b\ufeff"

# Inside a character class: what separates tokens, and what may sit in one.
_SPACE = r"\s" + SEPARATOR_CHARS
_VISIBLE = f"[^{_SPACE}]"

_ZWJ = "\u200d"
_APOSTROPHE = "['\u2019]"
_HYPHEN = "[-\u2010\u2011]"
_MINUS = "[-+\u2212]"
_UPPER_LATIN = "A-Z\u00c0-\u00d6\u00d8-\u00de"
_LETTER = r"[^\W\d_]"
# What may follow a sentence-final initial before the line ends: closing quotes and brackets.
_CLOSERS = "[)\\]}\"'\u2019\u201d\u00bb]"
# What a URL does not end with: it belongs to the sentence around the URL instead.
_URL_TRAILERS = "[.,;:!?'\"\u2019\u201d\u00bb\u2026\\]}>]"

# Clitics split off as in the Penn Treebank, after the apostrophe ("'s", "'re") or, for
# the negation, with the n before it ("do" "n't").
_CLITIC_LETTERS = "(?:[sSmMdD]|[rR][eE]|[vV][eE]|[lL][lL])"

# Abbreviations that keep their final period even at the end of a sentence.  Each is also
# accepted capitalised and in capitals (Reuters headlines are in capitals).
_ABBREVIATIONS = " ".join(
    (
        # Titles and ranks.
        "Mr Mrs Ms Messrs Dr Prof Rev Hon Jr Sr St Mt Ft Gen Lt Col Maj Capt Cmdr Adm Sgt",
        "Cpl Pvt Gov Sen Rep Pres Supt Insp",
        # Companies and organisations.
        "Inc Corp Ltd Co Bros Assn Dept Univ",
        # Months (May, June and July are not shortened).
        "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec",
        # US states as news datelines write them ("Oakland, Calif.").
        "Ala Ariz Ark Calif Colo Conn Fla Ga Ill Ind Kan Ky Md Mich Minn Miss Neb Nev Okla",
        "Ore Tenn Tex Va Vt Wash Wis Wyo",
        # Addresses and references.
        "Ave Blvd Rd No Nos Vol vol pp Fig fig",
        # Latin and other running-text abbreviations.
        "vs etc al approx cf ca viz",
    )
).split()


def _class_body(codepoints: list[int]) -> str:
    """Code points as the inside of a regex character class, runs written as ranges."""
    runs: list[list[int]] = []
    for codepoint in sorted(codepoints):
        if runs and codepoint == runs[-1][1] + 1:
            runs[-1][1] = codepoint
        else:
            runs.append([codepoint, codepoint])
    return "".join(
        f"\\U{first:08x}" if first == last else f"\\U{first:08x}-\\U{last:08x}"
        for first, last in runs
    )


def _extending_chars() -> tuple[str, str]:
    """Characters that belong to the character before them, as two character-class bodies.

    These are the combining marks (so "e" + U+0301 is one letter, not two tokens), soft
    hyphens, joiners and the emoji modifiers (skin tones, variation selectors, tags).
    Combining marks are only found in the first two planes, so only those are scanned.

    Returns:
        The characters of the Basic Multilingual Plane, then those above it.  ``re``
        tests BMP characters against a bitmap but walks a list of ranges for the others,
        so the patterns test the second set only for characters above the BMP.
    """
    marks = [
        codepoint
        for codepoint in range(0x20000)
        if unicodedata.category(chr(codepoint)) in ("Mn", "Mc", "Me")
    ]
    extras = [0x00AD, 0x200C, 0x2060]  # soft hyphen, zero-width non-joiner, word joiner
    extras += range(0x1F3FB, 0x1F400)  # emoji skin-tone modifiers
    extras += range(0xE0020, 0xE0080)  # emoji tag characters (subdivision flags)
    extras += range(0xE0100, 0xE01F0)  # variation selectors supplement
    extending = marks + extras
    return (
        _class_body([codepoint for codepoint in extending if codepoint < 0x10000]),
        _class_body([codepoint for codepoint in extending if codepoint >= 0x10000]),
    )


def _abbreviation_alternatives() -> str:
    forms = set()
    for abbreviation in _ABBREVIATIONS:
        forms.update((abbreviation, abbreviation.capitalize(), abbreviation.upper()))
    # Longest first, so that "Mrs" is not cut short by "Mr".
    return "|".join(sorted(forms, key=lambda form: (-len(form), form)))


def _token_rules(ascii_only: bool = False) -> dict[str, str]:
    """The alternatives of the master pattern by name, in the order they are tried.

    With ``ascii_only``, the rules for text of ASCII characters only: no character extends
    another there, so the long classes of combining marks drop out and the pattern
    compiles in a few milliseconds instead of about 0.2 s, most of `nerlstm tag`'s start.
    """
    if ascii_only:
        extending = "(?!)"  # matches nothing
        word_char = f"[\\w{_ZWJ}]"
    else:
        bmp_extend, astral_extend = _extending_chars()
        astral_extending = f"(?=[\\U00010000-\\U0010ffff])[{astral_extend}]"
        extending = f"(?:[{bmp_extend}]|{astral_extending})"
        # Any character that is part of a word: letters, digits, _, and what extends them.
        word_char = f"(?:[\\w{bmp_extend}{_ZWJ}]|{astral_extending})"
    starts_run = f"(?<!{word_char})"  # not glued to a word before it
    ends_run = f"(?!{word_char})"  # not glued to a word after it
    clitic_tail = f"{_CLITIC_LETTERS}{ends_run}"
    negation = f"[nN]{_APOSTROPHE}[tT]{ends_run}"
    # A word character, except the n that begins "n't", which goes with the clitic.
    word_unit = f"(?:(?!{negation}){word_char})"
    before_separator = f"(?=[{_SPACE}])"

    url = (
        f"{starts_run}(?i:(?:https?|ftp)://|www\\.)"
        # Parentheses only in balanced pairs, so that "(see http://x.org)" keeps its ")".
        f"(?:\\([^{_SPACE}()]*\\)|[^{_SPACE}()])*"
        f"(?<!{_URL_TRAILERS})"
    )
    email = "(?<![\\w.+\\-])\\w[\\w.+\\-]*@\\w[\\w\\-]*(?:\\.\\w[\\w\\-]*)+"
    mention_or_hashtag = f"{starts_run}(?<![@#])[@#]{word_unit}+"
    # An abbreviation's period may be followed by a hyphenated tail ("U.S.-led"), or by
    # anything but a word character or another period; "bbc.co.uk" and "S.AFRICAN" are
    # left to the word rule, which keeps them whole too.
    abbreviation_end = f"\\.(?:(?:{_HYPHEN}{word_unit}+)+|(?!{word_char}|\\.))"
    dotted_abbreviation = (  # "U.S.", "a.m.", "Ph.D."
        f"{starts_run}(?<!\\.)(?:{_LETTER}{{1,3}}\\.)+{_LETTER}{{1,3}}{abbreviation_end}"
    )
    known_abbreviation = (
        f"{starts_run}(?<!\\.)(?={_LETTER}{{1,6}}\\.)"  # cheap test before the long list
        f"(?:{_abbreviation_alternatives()}){abbreviation_end}"
    )
    # "J. Smith"; but a capital and period ending the line end a sentence ("in group B."),
    # and so does "I." after a lower-case word ("so did I. Then").
    initial = (
        f"{starts_run}(?<!\\.)(?:(?<![a-z][ \\t])|(?!I\\.))[{_UPPER_LATIN}]\\."
        f"(?!{word_char}|\\.)(?!{_CLOSERS}*[{_SPACE}]*\\Z)"
    )
    currency_prefix = f"{starts_run}[A-Z]{{1,3}}\\$"  # "US$", "C$", "HK$"
    clitic = f"(?<={word_char}|\\.){_APOSTROPHE}{clitic_tail}|{negation}"
    # A leading sign or decimal point only in front of a digit and not after a word, so
    # that "1-0" stays one token while "-2" and ".5" get their sign.
    number_sign = f"(?:{starts_run}(?:{_MINUS}\\.?|\\.)(?=\\d))"
    # What may join two runs of word characters inside one token.
    joiner = (
        f"(?:{_HYPHEN}|[./&]"  # "Hewlett-Packard", "3.5", "S.AFRICAN", "1/2", "AT&T"
        f"|(?<=\\d)[,:](?=\\d)"  # "1,000", "10:30"
        f"|{_APOSTROPHE}(?!{clitic_tail}))"  # "O'Neill", but not "Peter's"
    )
    # A hyphen left hanging before a space stays with its word ("pre- and post-war",
    # "6- 3"), and so do the plus of a credit rating ("AA+") and the = of a tied rank ("10=").
    hanging_end = f"(?:{_HYPHEN}|(?<=[A-Z])\\+|(?<=\\d)=){before_separator}"
    word = f"{number_sign}?{word_unit}+(?:{joiner}{word_unit}+)*(?:{hanging_end})?"
    # Runs kept as one token: ellipses, dashes and rules.
    punctuation_run = r"\.{2,}|-{2,}|\*{2,}|={2,}"
    flag = "[\U0001f1e6-\U0001f1ff]{2}"  # two regional indicators make one flag
    # Anything else: one visible character with whatever extends it, including emoji
    # sequences joined by U+200D.
    single_char = f"{_VISIBLE}(?:{_ZWJ}{_VISIBLE}?|{extending})*"

    # Most tokens are plain letters or digits up to a space; every other rule would give
    # them unchanged (each needs some other character), so this shortcut tried first
    # changes no result and saves much of the time spent on news text.
    plain_word = f"[^\\W_]+(?=[{_SPACE}]|\\Z)"

    return {
        "plain_word": plain_word,
        "url": url,
        "email": email,
        "mention_or_hashtag": mention_or_hashtag,
        "dotted_abbreviation": dotted_abbreviation,
        "known_abbreviation": known_abbreviation,
        "initial": initial,
        "currency_prefix": currency_prefix,
        "clitic": clitic,
        "word": word,
        "punctuation_run": punctuation_run,
        "flag": flag,
        "single_char": single_char,
    }


@functools.cache
def _token_pattern(ascii_only: bool = False) -> re.Pattern[str]:
    """The master pattern, built on first use (see :func:`_token_rules` on ``ascii_only``).

    Group 1 is the token.  The separators before it are consumed by the same match, which
    is quicker than letting the search try every rule at every separator and fail.
    """
    rules = "|".join(f"(?:{rule})" for rule in _token_rules(ascii_only).values())
    return re.compile(f"[{_SPACE}]*({rules})")


@functools.cache
def _separator_chars() -> str:
    """Every separator character, for ``str.rstrip``."""
    # Unicode has no whitespace outside the Basic Multilingual Plane.
    whitespace = (chr(codepoint) for codepoint in range(0x10000) if chr(codepoint).isspace())
    return "".join(whitespace) + SEPARATOR_CHARS


# A ranking or list number opening the line keeps its period, as in CoNLL ("1. Germany").
_LIST_NUMBER = re.compile(f"[{_SPACE}]*(\\d{{1,3}}\\.)(?=[{_SPACE}]+[^{_SPACE}])")


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Tokens of one line with their offsets: text[start:end] == token, always.

    Args:
        text: one line of raw text; any string is accepted.

    Returns:
        ``(token, start, end)`` for each token in order, where ``start`` and ``end`` are
        Python slice offsets into ``text``.  Separators (whitespace, U+200B, U+FEFF) are
        in no token; every other character is in exactly one.  Empty or blank text gives
        an empty list.

    Example:
        >>> [token for token, _, _ in tokenize("Peter's firm (U.S.) didn't.")]
        ['Peter', "'s", 'firm', '(', 'U.S.', ')', 'did', "n't", '.']
    """
    tokens: list[tuple[str, int, int]] = []
    position = 0
    list_number = _LIST_NUMBER.match(text)
    if list_number is not None:
        tokens.append((list_number[1], *list_number.span(1)))
        position = list_number.end(1)
    # Searching stops where the trailing separators begin: there the leading separators of
    # the pattern would match and then fail, again at each position, in quadratic time.
    end = len(text.rstrip(_separator_chars()))
    matches = _token_pattern(text.isascii()).finditer(text, position, end)
    tokens.extend((match[1], *match.span(1)) for match in matches)
    return tokens


def whitespace_tokens(text: str) -> list[tuple[str, int, int]]:
    """Tokens apart by whitespace, with their offsets (for pre-tokenized text)."""
    return [(match.group(), match.start(), match.end()) for match in re.finditer(r"\S+", text)]


def char_tokens(text: str) -> list[tuple[str, int, int]]:
    """Each character but whitespace a token, with its offsets (for Chinese, Japanese,
    Thai: languages written without spaces, annotated a character at a time)."""
    return [(char, index, index + 1) for index, char in enumerate(text)
            if not char.isspace() and char not in SEPARATOR_CHARS]


TOKENIZERS = {"default": tokenize, "whitespace": whitespace_tokens, "chars": char_tokens}


def tokenizer_for(name: str):
    """The tokenizer a model was trained for: ``default`` (English-like text, as CoNLL-2003
    is tokenized), ``whitespace`` or ``chars``."""
    return TOKENIZERS[name]
