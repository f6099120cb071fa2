"""Sentences inside a line, and text read by documents."""

import json

import pytest
from conftest import DATA, TINY, run_cli, write

from nerlstm.conll import read_conll
from nerlstm.sentences import (
    MAX_SENTENCE_TOKENS,
    PARAGRAPH_TOKENS,
    sentence_starts,
    split_sentences,
)
from nerlstm.tokenizer import char_tokens, tokenize, tokenizer_for, whitespace_tokens


def words(text: str) -> list[str]:
    return [token for token, _, _ in tokenize(text)]


@pytest.mark.parametrize("text, expected", [
    ("Mr. Smith went to Washington. He said no.", ["Mr. Smith went to Washington .",
                                                   "He said no ."]),
    ("The U.S. economy grew. Analysts agreed!", ["The U.S. economy grew .",
                                                 "Analysts agreed !"]),
    ('He said "We won." Then he left.', ['He said " We won . "', "Then he left ."]),
    ("He left at 5 p.m. on Monday.", ["He left at 5 p.m. on Monday ."]),
    ("Prices fell. and then rose.", ["Prices fell . and then rose ."]),  # lower case goes on
    ("1996-12-06 Japan won 2-1.", ["1996-12-06 Japan won 2-1 ."]),
    ("", []),
])
def test_sentences_end_at_a_lone_period_before_a_capital(text, expected):
    tokens = words(text)
    assert [" ".join(tokens[start:end]) for start, end in split_sentences(tokens)] == expected


def test_a_run_without_an_ending_is_cut_at_the_longest_sentence():
    tokens = ["word"] * (2 * MAX_SENTENCE_TOKENS + 5)
    assert sentence_starts(tokens) == [0, MAX_SENTENCE_TOKENS, 2 * MAX_SENTENCE_TOKENS]


def test_the_tokenizers_keep_offsets():
    text = "東京で 会議が開かれた。"
    assert [token for token, _, _ in char_tokens(text)] == list("東京で会議が開かれた。")
    for split in (tokenize, whitespace_tokens, char_tokens):
        assert all(text[start:end] == token for token, start, end in split(text))
    assert tokenizer_for("whitespace")("a  b") == [("a", 0, 1), ("b", 3, 4)]


def tags_of(output: str) -> list[list[str]]:
    return [[token["tag"] for token in json.loads(line)["tokens"]]
            for line in output.splitlines()]


def test_text_is_read_by_documents_and_sentences(trained_model):
    sentences = [" ".join(s.tokens) for s in read_conll(str(DATA / "test.txt"))[:12]]
    # the same sentences, one a line, and all on one line: one document either way
    per_line = run_cli("tag", "-m", trained_model, "-f", "jsonl", "--threads", "1",
                       input="\n".join(sentences) + "\n").stdout
    one_line = run_cli("tag", "-m", trained_model, "-f", "jsonl", "--threads", "1",
                       input=" ".join(sentences) + "\n").stdout
    assert sum(tags_of(per_line), []) == sum(tags_of(one_line), [])
    alone = run_cli("tag", "-m", trained_model, "-f", "jsonl", "--threads", "1", "--lines",
                    input="\n".join(sentences) + "\n").stdout
    documents = run_cli("tag", "-m", trained_model, "-f", "jsonl", "--threads", "1",
                        input="\n\n".join(sentences) + "\n").stdout
    # a blank line between each sentence makes each a document, as --lines reads them
    assert [t for t in tags_of(documents) if t] == tags_of(alone)


def test_a_character_model_tags_text_a_character_at_a_time(tmp_path):
    rows = []
    for _ in range(30):
        for sentence in (("東京", "LOC"), ("大阪", "LOC"), ("田中", "PER")):
            name, label = sentence
            rows += [f"{char} {'B' if i == 0 else 'I'}-{label}" for i, char in enumerate(name)]
            rows += [f"{char} O" for char in "で会議が開かれた。"]
            rows.append("")
    data = write(tmp_path / "zh.txt", "\n".join(rows) + "\n")
    model = tmp_path / "zh.pt"
    trained = run_cli("train", data, "-m", model, "--tokenizer", "chars", *TINY)
    assert trained.exit_code == 0, trained.output
    import nerlstm

    facts = json.loads(run_cli("info", "-m", model, "--json").stdout)
    assert facts["config"]["tokenizer"] == "chars"
    tagged = run_cli("tag", "-m", model, "-f", "jsonl", input="東京で会議が開かれた。\n")
    assert len(json.loads(tagged.stdout)["tokens"]) == 11
    result = nerlstm.load(model)("東京で会議が開かれた。")
    assert [token.text for token in result.tokens] == list("東京で会議が開かれた。")


def test_a_paragraph_is_also_cut_where_a_date_or_number_meets_a_capital():
    row = "HARTFORD 12 7 6 77 76 30".split()
    dateline = "NEW YORK 1996-12-07 Standings of teams after games played on Friday :".split()
    tokens = dateline + row * 8
    assert len(tokens) > PARAGRAPH_TOKENS
    sentences = [" ".join(tokens[start:end]) for start, end in split_sentences(tokens)]
    assert sentences[:3] == ["NEW YORK 1996-12-07", "Standings of teams after games played on "
                             "Friday :", " ".join(row)]
    assert len(sentences) == 2 + 8
    # a short line (a sentence) keeps its numbers and names together
    short = "Bayern beat Ajax 2 Sunday".split()
    assert split_sentences(short) == [(0, len(short))]


def pieces(text: str) -> list[str]:
    tokens = words(text)
    return [" ".join(tokens[start:end]) for start, end in split_sentences(tokens)]


STANDINGS = ("NEW YORK 1996-12-07 Standings of National Hockey League teams after games played "
             "on Friday: EASTERN CONFERENCE NORTHEAST DIVISION W L T GF GA PTS HARTFORD 12 7 6 "
             "77 76 30 BUFFALO 13 12 2 78 77 28 ATLANTIC DIVISION W L T GF GA PTS NEW JERSEY 14 "
             "10 1 61 61 29 TAMPA BAY 8 15 2 69 81 18 SATURDAY, DECEMBER 7 PHOENIX AT NEW "
             "JERSEY CALGARY AT BOSTON TAMPA BAY AT HARTFORD")


def test_a_table_on_one_line_is_cut_into_its_headings_rows_and_fixtures():
    assert len(words(STANDINGS)) > PARAGRAPH_TOKENS
    assert pieces(STANDINGS) == [
        "NEW YORK 1996-12-07",
        "Standings of National Hockey League teams after games played on Friday :",
        "EASTERN CONFERENCE NORTHEAST DIVISION", "W L T GF GA PTS",
        "HARTFORD 12 7 6 77 76 30", "BUFFALO 13 12 2 78 77 28", "ATLANTIC DIVISION",
        "W L T GF GA PTS",
        "NEW JERSEY 14 10 1 61 61 29",  # NEW is no heading: the line names NEW JERSEY again
        "TAMPA BAY 8 15 2 69 81 18", "SATURDAY , DECEMBER 7",
        "PHOENIX AT NEW JERSEY",  # NEW JERSEY is written twice: not NEW | JERSEY CALGARY
        "CALGARY AT BOSTON", "TAMPA BAY AT HARTFORD"]


def test_a_numbered_list_is_cut_before_each_number():
    results = ("Women's 100 metres hurdles: 1. Ludmila Engquist (Sweden) 12.60 2. Brigita "
               "Bokovec (Slovenia) 12.92 3. Dionne Rose (Jamaica) 12.97 4. Michelle Freeman "
               "(Jamaica) 13.01 Men's 800 metres: 1. Wilson Kipketer (Denmark) 1:43.34 2. "
               "Norberto Tellez (Cuba) 1:44.13 3. Nico Motchebon (Germany) 1:44.86")
    assert pieces(results) == [
        "Women 's 100 metres hurdles :", "1 . Ludmila Engquist ( Sweden ) 12.60",
        "2 . Brigita Bokovec ( Slovenia ) 12.92", "3 . Dionne Rose ( Jamaica ) 12.97",
        "4 . Michelle Freeman ( Jamaica ) 13.01", "Men 's 800 metres :",
        "1 . Wilson Kipketer ( Denmark ) 1:43.34", "2 . Norberto Tellez ( Cuba ) 1:44.13",
        "3 . Nico Motchebon ( Germany ) 1:44.86"]


def test_rows_with_empty_fields_and_matches_of_two_teams():
    table = ("W L PCT GB Haitai 64 2 43 .596 - Ssangbangwool 59 2 49 .545 5 1/2 Hanwha 58 1 "
             "49 .542 6 Kia 55 3 50 .522 8 Lotte 46 6 54 .462 14 1/2 OB 41 4 64 .393 22 1/2 "
             "Results on Thursday: "
             "LG 2 OB 0 Samsung 4 Lotte 3 Pusan 1 Seoul 2 American League DETROIT 4 Kansas City 1")
    assert pieces(table) == [
        "W L PCT GB", "Haitai 64 2 43 .596 -", "Ssangbangwool 59 2 49 .545 5 1/2",
        "Hanwha 58 1 49 .542 6", "Kia 55 3 50 .522 8", "Lotte 46 6 54 .462 14 1/2",
        "OB 41 4 64 .393 22 1/2", "Results on Thursday :", "LG 2 OB 0", "Samsung 4 Lotte 3",
        "Pusan 1 Seoul 2", "American League",
        "DETROIT 4 Kansas City 1"]


def test_bylines_fixture_runs_numbered_headings_and_dated_rows():
    text = ("Rebels now control the town. Yuri Kushko TAVILDARA, Tajikistan 1996-08-30 Tajik "
            "government forces said on Friday they had retaken the town. The Davis Cup ties: "
            "United States at Netherlands Czech Republic at Germany France at Japan Postponed: "
            "Walsall v Wrexham Division three Brighton 1 Scunthorpe 1 Tour itinerary: May 13 "
            "Arrive in London July 12 v Scotland July 16-18 v Glamorgan")
    assert len(words(text)) > PARAGRAPH_TOKENS
    assert pieces(text) == [
        "Rebels now control the town .", "Yuri Kushko",  # the byline
        "TAVILDARA , Tajikistan 1996-08-30",
        "Tajik government forces said on Friday they had retaken the town .",
        "The Davis Cup ties :", "United States at Netherlands", "Czech Republic at Germany",
        "France at Japan Postponed :", "Walsall v Wrexham", "Division three",
        "Brighton 1 Scunthorpe 1", "Tour itinerary :", "May 13", "Arrive in London",
        "July 12 v Scotland", "July 16-18 v Glamorgan"]


def test_prose_keeps_its_dates_numbers_and_places_together():
    text = ("On August 15, Kevorkian helped a woman die. The two Iranian men were arrested in "
            "July and the three Islamic guards fled. He made an official visit to Brazil Sept. "
            "15-21, officials said. Nicaraguan president has operation in U.S. MANAGUA, "
            "Nicaragua 1996-08-26 The president played at Wembley Stadium at 3 pm on the day he "
            "left.")
    assert len(words(text)) > PARAGRAPH_TOKENS
    assert pieces(text) == [
        "On August 15 , Kevorkian helped a woman die .",
        "The two Iranian men were arrested in July and the three Islamic guards fled .",
        "He made an official visit to Brazil Sept. 15-21 , officials said .",
        "Nicaraguan president has operation in U.S.", "MANAGUA , Nicaragua 1996-08-26",
        "The president played at Wembley Stadium at 3 pm on the day he left ."]


PROSE = ('The company said on Friday it earned 3.5 percent more in 1996. In 1995 the group, led '
         'by Chairman John Smith, lost money. Shares of BMW AG rose 3 to 812 marks, and the DAX '
         'index closed 12 points higher at 2,540. "We are pleased," Smith said. "The outlook is '
         'good. We expect growth." Analysts at Merrill Lynch agreed, and said the shares could '
         'reach 900 marks by 1997 at the latest, or 950 marks in 2 years.')


def test_prose_with_numbers_is_cut_only_at_its_sentence_ends():
    assert len(words(PROSE)) > PARAGRAPH_TOKENS  # read as a paragraph, table rules on
    assert pieces(PROSE) == [
        "The company said on Friday it earned 3.5 percent more in 1996 .",
        "In 1995 the group , led by Chairman John Smith , lost money .",
        "Shares of BMW AG rose 3 to 812 marks , and the DAX index closed 12 points higher at "
        "2,540 .",
        '" We are pleased , " Smith said .',  # the quote opens the next sentence, not this
        '" The outlook is good .', 'We expect growth . "',
        "Analysts at Merrill Lynch agreed , and said the shares could reach 900 marks by 1997 "
        "at the latest , or 950 marks in 2 years ."]


@pytest.mark.parametrize("text, expected", [
    # a short line keeps its numbers, list numbers and names together
    ("He finished 2. Smith was third in the 100 metres.",
     ["He finished 2 .", "Smith was third in the 100 metres ."]),
    ("Bayern beat Ajax 2 Sunday AT home v Celtic.", ["Bayern beat Ajax 2 Sunday AT home v Celtic ."]),
    ("1. Ludmila Engquist (Sweden) 12.60", ["1. Ludmila Engquist ( Sweden ) 12.60"]),
])
def test_short_lines(text, expected):
    assert pieces(text) == expected
