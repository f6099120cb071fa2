import pytest
from conftest import write

from nerlstm.conll import parse_conll, read_conll, read_tagged
from nerlstm.errors import NerlstmError


def test_reads_columns_sentences_and_docstart(tmp_path):
    path = write(tmp_path / "a.txt", "-DOCSTART- -X- O O\n\nEU NNP I-ORG\nrejects VBZ O\n\n"
                 "Peter NNP I-PER\n-DOCSTART- -X- O O\nBlackburn NNP I-PER\n")
    sentences = read_conll(str(path))
    assert [s.tokens for s in sentences] == [["EU", "rejects"], ["Peter"], ["Blackburn"]]
    assert [s.tags for s in sentences] == [["I-ORG", "O"], ["I-PER"], ["I-PER"]]
    assert [s.line for s in sentences] == [3, 6, 8]
    assert [s.document for s in sentences] == [1, 1, 2]


def test_crlf_bom_tabs_and_whitespace_only_lines(tmp_path):
    path = write(tmp_path / "a.txt", b"\xef\xbb\xbfEU\t NNP\tB-ORG\r\nsays VBZ O\r\n \t\r\n"
                 b"Paris NNP B-LOC")  # no final newline
    sentences = read_conll(str(path))
    assert [s.tokens for s in sentences] == [["EU", "says"], ["Paris"]]
    assert sentences[0].tags == ["B-ORG", "O"]


def test_column_choice_and_negative_columns():
    lines = ["EU NNP B-NP B-ORG", "says VBZ B-VP O"]
    (sentence,) = parse_conll(lines, token_column=1, tag_column=-2)
    assert sentence.tokens == ["NNP", "VBZ"] and sentence.tags == ["B-NP", "B-VP"]


def test_unicode_inside_tokens_is_kept(tmp_path):
    path = write(tmp_path / "a.txt", "a\u200bb\tO\n\ufeffx\tB-person\n\u00a0\tO\n")
    (sentence,) = read_conll(str(path))
    assert sentence.tokens == ["a\u200bb", "\ufeffx", "\u00a0"]


@pytest.mark.parametrize("text, line, message", [
    ("EU NNP B-ORG\nsays O\n", 2, "expected 3 columns like the lines above, found 2"),
    ("EU\nsays\n", 1, "token and the tag would be the same column"),
    ("\n\n-DOCSTART- -X- O O\n\n", None, "no sentences found"),
])
def test_malformed_files_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(NerlstmError) as caught:
        read_tagged(str(path))
    assert message in str(caught.value)
    assert caught.value.path == str(path) and caught.value.line == line


def test_bad_tag_and_missing_file_and_directory(tmp_path):
    path = write(tmp_path / "bad.txt", "EU B-ORG\nsays O\n\nx Q-PER\n")
    with pytest.raises(NerlstmError, match=r"bad.txt:4: tag 'Q-PER' fits no scheme"):
        read_tagged(str(path))
    with pytest.raises(NerlstmError, match="no such file"):
        read_tagged(str(tmp_path / "missing.txt"))
    with pytest.raises(NerlstmError, match="is a directory"):
        read_tagged(str(tmp_path))


def test_undecodable_byte_names_line_and_byte_and_suggests_encoding(tmp_path):
    path = write(tmp_path / "latin.txt", b"EU B-ORG\n\nEspa\xf1a B-LOC\n")
    with pytest.raises(NerlstmError) as caught:
        read_tagged(str(path))
    assert caught.value.line == 3
    assert "byte 0xf1" in str(caught.value) and "--encoding" in str(caught.value)
    data = read_tagged(str(path), encoding="latin-1")
    assert data.sentences[1].tokens == ["España"]


def test_scheme_is_detected_and_can_be_given(tmp_path):
    path = write(tmp_path / "a.txt", "EU I-ORG\nsays O\n")
    assert read_tagged(str(path)).scheme == "iob1"
    assert read_tagged(str(path), scheme="iob2").scheme == "iob2"


def test_read_columns_keeps_the_lines_between_sentences_and_passes_pauses_on():
    from nerlstm.conll import Between, NumberedLine, TokenLines, read_columns

    lines = [NumberedLine("a.txt", number, text) for number, text in
             enumerate(["", "-DOCSTART- x", "EU B", "says O"], start=1)]
    lines += [None, NumberedLine("a.txt", 5, "")]
    lines += [NumberedLine("b.txt", 1, "Paris B"), None, NumberedLine("c.txt", 1, "x y")]
    found = list(read_columns(lines))
    assert found == [
        Between("", False), Between("-DOCSTART- x", True), None,
        TokenLines([["EU", "B"], ["says", "O"]], "a.txt", 3, 1), Between("", False),
        None, TokenLines([["Paris", "B"]], "b.txt", 1, 1), TokenLines([["x", "y"]], "c.txt", 1, 1)]
    with pytest.raises(NerlstmError, match="does not exist") as caught:
        found[3].column_indices(2, None)
    assert (caught.value.path, caught.value.line) == ("a.txt", 3)
