import json
import subprocess
import sys

import pytest
from conftest import DATA, SHARED, needs_shared, run_cli, write

from nerlstm import schemes
from nerlstm.conll import read_conll
from nerlstm.datafiles import Reading, read_data
from nerlstm.errors import NerlstmError
from nerlstm.jsonl import parse_jsonl


def test_the_readers_and_convert_load_no_torch():
    probe = ("import sys, nerlstm; nerlstm.read_data('data/dev.txt'); "
             "nerlstm.convert('data/dev.txt', '-', to='jsonl'); "
             "import nerlstm.hfdata, nerlstm.labelmap; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, cwd=DATA.parent)
    assert done.stdout.strip().endswith("False")


def lines(*records) -> list[str]:
    return [record if isinstance(record, str) else json.dumps(record) for record in records]


def test_the_span_keys_of_the_common_tools_give_the_same_sentence():
    text = "Peter Blackburn visited Paris ."
    records = [
        {"text": text, "entities": [{"start": 0, "end": 15, "label": "PER", "text": "x",
                                     "score": 0.9}, {"start": 24, "end": 29, "label": "LOC"}]},
        {"text": text, "spans": [{"start": 0, "end": 15, "label": "PER"},
                                 {"start": 24, "end": 29, "label": "LOC"}]},
        {"text": text, "label": [[24, 29, "LOC"], [0, 15, "PER"]]},
        {"text": text, "labels": [{"start_offset": 0, "end_offset": 15, "label": "PER"},
                                  [24, 29, "LOC"]]},
    ]
    data = parse_jsonl(lines(*records), path="a.jsonl")
    assert [s.tags for s in data.sentences] == [["B-PER", "I-PER", "O", "B-LOC", "O"]] * 4
    assert [s.line for s in data.sentences] == [1, 2, 3, 4]
    assert [s.document for s in data.sentences] == [0, 1, 2, 3]  # no id: a line each


def test_document_ids_group_consecutive_lines_and_texts_split_into_sentences():
    data = parse_jsonl(lines(
        {"text": "EU rejects it. Peter came.\nParis", "doc_id": "a"}, "",
        {"text": "More", "doc_id": "a"}, {"text": "Other", "document": 7},
        {"text": "Again", "doc_id": "a"}), path="a.jsonl")
    assert [s.tokens for s in data.sentences] == [
        ["EU", "rejects", "it", "."], ["Peter", "came", "."], ["Paris"], ["More"], ["Other"],
        ["Again"]]
    assert [s.document for s in data.sentences] == [0, 0, 0, 0, 1, 2]
    assert [s.line for s in data.sentences] == [1, 1, 1, 3, 4, 5]


def test_the_tokenizer_is_the_one_given():
    record = {"text": "Ab cd", "entities": [[0, 2, "X"]]}
    (sentence,) = parse_jsonl(lines(record), path="a", tokenizer="chars").sentences
    assert sentence.tokens == ["A", "b", "c", "d"] and sentence.tags == ["B-X", "I-X", "O", "O"]


def test_an_entity_holds_its_sentence_together():
    # the splitter would end a sentence after "Inc ." - an entity across it keeps it whole
    record = {"text": "Acme Inc . Ltd said so .", "entities": [[0, 14, "ORG"]]}
    (sentence,) = parse_jsonl(lines(record), path="a").sentences
    assert sentence.tags[:4] == ["B-ORG", "I-ORG", "I-ORG", "I-ORG"]


def test_given_tokens_and_sentences_are_kept():
    record = {"text": "U.S.-based Acme . Ltd", "entities": [[11, 15, "ORG"]],
              "tokens": [{"text": "U.S.-based", "start": 0, "end": 10}, "Acme", ".", "Ltd"],
              "sentences": [[0, 4]]}
    (sentence,) = parse_jsonl(lines(record), path="a").sentences
    assert sentence.tokens == ["U.S.-based", "Acme", ".", "Ltd"]
    assert sentence.tags == ["O", "B-ORG", "O", "O"]
    del record["sentences"]  # then they are cut as text is
    assert [s.tokens for s in parse_jsonl(lines(record), path="a").sentences] == [
        ["U.S.-based", "Acme", "."], ["Ltd"]]


@pytest.mark.parametrize("handling, tags, count", [
    ("snap", ["B-LOC", "I-LOC", "O"], 1),
    ("drop", ["O", "O", "O"], 1),
])
def test_misaligned_spans_are_widened_or_dropped_and_counted(handling, tags, count):
    record = {"text": "New York-based firm", "entities": [[0, 8, "LOC"]]}
    data = parse_jsonl(lines(record), path="a.jsonl", tokenizer="whitespace",
                       misaligned=handling)
    assert data.sentences[0].tags == tags and data.misaligned.count == count
    warnings = data.warnings("a.jsonl", handling)
    assert "1 span does not fall on token boundaries" in warnings[0]
    assert warnings[1].startswith('a.jsonl:1: LOC "New York"')


def test_a_span_over_spaces_only_cannot_snap_and_is_dropped():
    data = parse_jsonl(lines({"text": "a  b", "entities": [[1, 3, "X"]]}), path="a")
    assert data.sentences[0].tags == ["O", "O"] and data.misaligned.count == 1


def test_no_span_key_anywhere_is_a_warning():
    data = parse_jsonl(lines({"text": "a b", "ents": [[0, 1, "X"]]}), path="a")
    assert "no line holds entities" in data.warnings("a", "snap")[0]


def test_duplicate_spans_are_one_entity():
    record = {"text": "Paris", "spans": [[0, 5, "LOC"], [0, 5, "LOC"]]}
    assert parse_jsonl(lines(record), path="a").sentences[0].tags == ["B-LOC"]


@pytest.mark.parametrize("line, fragment", [
    ('{"text": "a", ', "not valid JSON"),
    ('["a"]', "found a JSON list, expected an object"),
    ('{"entities": []}', 'no "text" key'),
    ('{"text": 3}', '"text" is a number'),
    ('{"text": "ab cd", "entities": [[0, 9, "X"]]}', "[0, 9] is outside the text (of 5"),
    ('{"text": "ab cd", "entities": [[-1, 2, "X"]]}', "outside the text"),
    ('{"text": "ab cd", "entities": [[2, 2, "X"]]}', "outside the text"),
    ('{"text": "ab cd", "entities": [[0, 2, "X"], [1, 5, "Y"]]}', "spans overlap: X [0, 2]"),
    ('{"text": "ab cd", "entities": [[0, 2]]}', "expected [start, end, label]"),
    ('{"text": "ab cd", "entities": [["0", 2, "X"]]}', "with integer offsets"),
    ('{"text": "ab cd", "entities": [[0, 2, "A B"]]}', "a label without spaces"),
    ('{"text": "ab cd", "entities": {"start": 0}}', '"entities" is a object'),
    ('{"text": "ab", "doc_id": [1]}', "expected a document id"),
    ('{"text": "ab cd", "tokens": ["ab", "x"]}', '"x" is not in the text'),
    ('{"text": "ab", "tokens": [{"start": 0, "end": 7}]}', "outside the text"),
    ('{"text": "ab", "tokens": ["ab"], "sentences": [[0, 2]]}', "to cover all 1 tokens"),
    ('{"text": "ab", "tokens": ["ab"], "sentences": [[1, 1]]}', "expected token ranges"),
    ('{"text": "ab", "sentences": [[0, 1]]}', '"sentences" without "tokens"'),
])
def test_bad_lines_are_one_error_line_with_file_and_line(tmp_path, line, fragment):
    path = write(tmp_path / "a.jsonl", '{"text": "fine"}\n' + line + "\n")
    result = run_cli("convert", path, "-o", tmp_path / "out.txt")
    assert result.exit_code == 1 and not (tmp_path / "out.txt").exists()
    assert result.stderr.startswith(f"error: {path}:2: ") and fragment in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_misaligned_error_and_overlap_after_snapping(tmp_path):
    common = ["-o", tmp_path / "out.txt", "--tokenizer", "whitespace"]
    path = write(tmp_path / "a.jsonl", json.dumps(
        {"text": "New York-based", "entities": [[0, 8, "LOC"]]}) + "\n")
    result = run_cli("convert", path, *common, "--misaligned", "error")
    assert result.exit_code == 1 and result.stderr == (
        f'error: {path}:1: the span LOC "New York" [0, 8] does not fall on token boundaries (it '
        f'cuts "New" "York-based"): expected spans that start and end with tokens (or '
        f'--misaligned snap|drop)\n')
    path = write(tmp_path / "b.jsonl", json.dumps(
        {"text": "ab-cd", "entities": [[0, 2, "X"], [3, 5, "Y"]]}) + "\n")
    result = run_cli("convert", path, *common)
    assert result.exit_code == 1 and "share the token" in result.stderr
    assert run_cli("convert", path, *common, "--misaligned", "drop").exit_code == 0


def test_data_format_is_a_checked_setting(tmp_path):
    result = run_cli("convert", DATA / "dev.txt", "-o", "-", "--data-format", "xml")
    assert result.exit_code == 2 and "expected one of auto, conll, jsonl" in result.stderr
    result = run_cli("convert", DATA / "dev.txt", "-o", "-", "--data-format", "jsonl")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {DATA / 'dev.txt'}:1: not valid JSON")


def test_the_format_is_told_by_extension_or_first_line(tmp_path):
    record = json.dumps({"text": "Paris", "entities": [[0, 5, "LOC"]]}) + "\n"
    for name in ("a.jsonl", "a.json", "a.txt"):
        data = read_data(str(write(tmp_path / name, "\n" + record)))
        assert data.format == "jsonl" and data.sentences[0].tags == ["B-LOC"]
    conll = write(tmp_path / "b.jsonl", "Paris B-LOC\n")
    assert read_data(str(conll), Reading(data_format="conll")).sentences[0].tokens == ["Paris"]
    with pytest.raises(NerlstmError, match="not valid JSON"):
        read_data(str(conll))


def test_convert_round_trip_keeps_tokens_entities_and_documents(tmp_path):
    jsonl, back = tmp_path / "a.jsonl", tmp_path / "back.txt"
    assert run_cli("convert", DATA / "dev.txt", "-o", jsonl).exit_code == 0
    result = run_cli("convert", jsonl, "-o", back)
    assert result.exit_code == 0, result.output
    before, after = read_conll(str(DATA / "dev.txt")), read_conll(str(back))
    assert [s.tokens for s in before] == [s.tokens for s in after]
    assert [schemes.spans(s.tags) for s in before] == [schemes.spans(s.tags) for s in after]
    assert [s.document for s in before] == [s.document for s in after]
    assert all(tag[:2] != "I-" or prev[2:] == tag[2:]  # IOB2: an entity starts with B-
               for s in after for prev, tag in zip(["O"] + s.tags, s.tags))


def test_convert_iob1_output_gives_the_file_back_and_stdin_stdout_work(tmp_path):
    source = "-DOCSTART- O\n\nEU I-ORG\nsays O\n\n-DOCSTART- O\n\nA I-PER\nB B-PER\n\n"
    jsonl = run_cli("convert", "-", "-o", "-", input=source)
    assert jsonl.exit_code == 0 and jsonl.stdout.count("\n") == 2
    assert "2 sentences, 2 documents, 3 entities -> stdout" in jsonl.stderr
    back = run_cli("convert", "-", "-o", "-", "--tags", "iob1", input=jsonl.stdout)
    assert back.exit_code == 0 and back.stdout == source


def test_convert_errors_are_one_line(tmp_path):
    bad = write(tmp_path / "bad.jsonl", '{"text": "ab", "entities": [[0, 1, "X"], [0, 2, "Y"]]}\n')
    result = run_cli("convert", bad, "-o", tmp_path / "out.txt")
    assert result.exit_code == 1 and not (tmp_path / "out.txt").exists()
    assert result.stderr == f"error: {bad}:1: spans overlap: X [0, 1] and Y [0, 2]: expected at " \
        "most one entity per character\n"
    spaced = write(tmp_path / "s.jsonl", '{"text": "a b", "tokens": ["a b"], "entities": []}\n')
    result = run_cli("convert", spaced, "-o", tmp_path / "out.txt")
    assert result.exit_code == 1 and "holds a space" in result.stderr
    assert run_cli("convert", bad, "-o", "x", "--to", "xml").exit_code == 2


def test_what_tag_writes_trains_and_evaluates(tmp_path, trained_model):
    tagged = run_cli("tag", DATA / "test.txt", "-m", trained_model, "-i", "conll", "-f", "jsonl",
                     "--threads", "1")
    assert tagged.exit_code == 0, tagged.output
    data = write(tmp_path / "tagged.jsonl", tagged.stdout)
    result = run_cli("train", data, "-m", tmp_path / "m.pt", "--epochs", "1", "--word-dim",
                     "8", "--char-dim", "4", "--char-hidden", "4", "--hidden", "8",
                     "--threads", "1")
    assert result.exit_code == 0, result.output
    assert f"train: {data}: " in result.stderr and "scheme iob2" in result.stderr
    # the model's own output, scored as gold: every entity it found, found again
    scored = run_cli("eval", data, "-m", trained_model, "--json", "--threads", "1")
    assert scored.exit_code == 0 and json.loads(scored.stdout)["f1"] == 1.0


def test_eval_reports_misaligned_spans_on_stderr(tmp_path, trained_model):
    data = write(tmp_path / "a.jsonl", json.dumps(
        {"text": "Peter Blackburn's visit", "entities": [[0, 16, "PER"]]}) + "\n")
    result = run_cli("eval", data, "-m", trained_model, "--json", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert f"warning: {data}: 1 span does not fall on token boundaries (widened" in result.stderr
    assert f"{data}:1: PER \"Peter Blackburn'\"" in result.stderr
    json.loads(result.stdout)
    result = run_cli("eval", data, "-m", trained_model, "--misaligned", "error")
    assert result.exit_code == 1 and result.stderr.startswith(f"error: {data}:1: the span PER")
    assert run_cli("eval", data, "-m", trained_model, "--misaligned", "x").exit_code == 2


def test_tag_reads_jsonl_texts_with_their_documents(trained_model):
    source = (json.dumps({"text": "Peter Blackburn visited Paris.", "doc_id": 1}) + "\n\n" +
              json.dumps({"text": "EU rejects German call", "doc_id": 1}) + "\n")
    result = run_cli("tag", "-m", trained_model, "-i", "jsonl", "--threads", "1", input=source)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 2 and "[" in result.stdout
    bad = run_cli("tag", "-m", trained_model, "-i", "jsonl", input="{nope\n")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: <stdin>:1: not valid JSON")


@needs_shared
@pytest.mark.slow
def test_conll2003_round_trip_keeps_tokens_and_entities(tmp_path):
    source = SHARED / "conll2003" / "test.txt"
    jsonl, back = tmp_path / "test.jsonl", tmp_path / "back.txt"
    assert run_cli("convert", source, "-o", jsonl).exit_code == 0
    assert run_cli("convert", jsonl, "-o", back, "--tags", "iob1").exit_code == 0
    before, after = read_conll(str(source)), read_conll(str(back))
    assert [(s.tokens, s.tags, s.document) for s in before] == \
        [(s.tokens, s.tags, s.document) for s in after]
