"""Hugging Face datasets, built here from data/ and saved to disk: the network is never used."""

import json
import os
import sys

import pytest
from conftest import DATA, run_cli

from nerlstm.conll import read_conll
from nerlstm.errors import NerlstmError
from nerlstm.hfdata import read_hf, split_name

os.environ["HF_DATASETS_OFFLINE"] = "1"  # before datasets is imported: no network in tests
datasets = pytest.importorskip("datasets")


def dataset_of(sentences, names=None, document=True, tags_column="ner_tags"):
    """A Dataset of the sentences: tag ids with ClassLabel names, or tag strings."""
    columns = {"tokens": [s.tokens for s in sentences]}
    features = {"tokens": datasets.Sequence(datasets.Value("string"))}
    if names:
        columns[tags_column] = [[names.index(tag) for tag in s.tags] for s in sentences]
        features[tags_column] = datasets.Sequence(datasets.ClassLabel(names=names))
    else:
        columns[tags_column] = [s.tags for s in sentences]
        features[tags_column] = datasets.Sequence(datasets.Value("string"))
    if document:
        columns["document"] = [s.document for s in sentences]
        features["document"] = datasets.Value("int32")
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """data/test.txt as a DatasetDict with a test and a dev split, tags as ClassLabel ids."""
    folder = tmp_path_factory.mktemp("hf") / "sample"
    test, dev = read_conll(str(DATA / "test.txt")), read_conll(str(DATA / "dev.txt"))
    names = ["O"] + sorted({tag for s in test + dev for tag in s.tags} - {"O"})
    datasets.DatasetDict({"test": dataset_of(test, names),
                          "dev": dataset_of(dev, names)}).save_to_disk(str(folder))
    return folder


def test_eval_on_a_saved_dataset_scores_as_the_column_file(saved, trained_model):
    common = ["-m", trained_model, "--json", "--threads", "1"]
    from_file = run_cli("eval", DATA / "test.txt", *common)
    from_hf = run_cli("eval", f"hf:{saved}:test", *common)
    assert from_hf.exit_code == 0, from_hf.output
    assert json.loads(from_hf.stdout) == json.loads(from_file.stdout)
    assert f"hf:{saved}:test: " in from_hf.stderr


def test_documents_come_from_the_document_column_or_docstart_rows(tmp_path):
    sentences = read_conll(str(DATA / "dev.txt"))
    expected = [s.document for s in sentences]

    def starts(documents):  # where a document starts: the numbers themselves may differ
        return [a != b for a, b in zip(documents, documents[1:])]

    dataset_of(sentences, document=True).save_to_disk(str(tmp_path / "a"))
    assert starts([s.document for s in read_hf(f"hf:{tmp_path / 'a'}")]) == starts(expected)
    rows = []
    for sentence in sentences:  # -DOCSTART- rows, as some CoNLL conversions keep them
        if not rows or rows[-1].document != sentence.document:
            rows.append(type(sentence)(["-DOCSTART-"], ["O"], document=sentence.document))
        rows.append(sentence)
    dataset_of(rows, document=False).save_to_disk(str(tmp_path / "b"))
    found = read_hf(f"hf:{tmp_path / 'b'}")
    assert [s.tokens for s in found] == [s.tokens for s in sentences]
    assert [s.document for s in found] == expected


def test_tag_strings_and_other_column_names(tmp_path, trained_model):
    sentences = read_conll(str(DATA / "test.txt"))
    dataset_of(sentences, tags_column="labels").save_to_disk(str(tmp_path / "d"))
    result = run_cli("eval", f"hf:{tmp_path / 'd'}", "-m", trained_model, "--hf-tags", "labels",
                     "--json", "--threads", "1")
    assert result.exit_code == 0, result.output
    result = run_cli("eval", f"hf:{tmp_path / 'd'}", "-m", trained_model)
    assert result.exit_code == 2
    assert result.stderr == (f"error: hf:{tmp_path / 'd'}: no column 'ner_tags': the dataset "
                             f"has tokens, labels, document (use --hf-tags)\n")


def test_convert_and_train_read_datasets(saved, tmp_path):
    out = tmp_path / "test.jsonl"
    result = run_cli("convert", f"hf:{saved}:test", "-o", out)
    assert result.exit_code == 0, result.output
    assert read_conll(str(DATA / "test.txt"))[0].tokens == json.loads(
        out.read_text().split("\n")[0])["text"].split()
    result = run_cli("train", f"hf:{saved}:test", "--dev", f"hf:{saved}:dev", "-m",
                     tmp_path / "m.pt", "--epochs", "1", "--word-dim", "8", "--char-dim", "4",
                     "--char-hidden", "4", "--hidden", "8", "--threads", "1")
    assert result.exit_code == 0, result.output
    info = run_cli("info", "-m", tmp_path / "m.pt", "--recipe")
    assert f'train = "hf:{saved}:test"' in info.stdout and 'hf_tags = "ner_tags"' in info.stdout


def test_tag_tags_a_datasets_tokens(saved, trained_model):
    result = run_cli("tag", f"hf:{saved}:test", "-m", trained_model, "--threads", "1")
    assert result.exit_code == 0, result.output
    first = read_conll(str(DATA / "test.txt"))[0].tokens
    assert [line.split()[0] for line in result.stdout.split("\n\n")[0].split("\n")] == first
    both = run_cli("tag", f"hf:{saved}:test", "-", "-m", trained_model)
    assert both.exit_code == 2 and "one hf: dataset at a time" in both.stderr


@pytest.mark.parametrize("suffix, fragment, code", [
    ("", "no split given: expected one of test, dev (as hf:", 2),
    (":train", "no split 'train': expected one of test, dev", 2),
])
def test_splits_are_checked(saved, trained_model, suffix, fragment, code):
    result = run_cli("eval", f"hf:{saved}{suffix}", "-m", trained_model)
    assert result.exit_code == code and fragment in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_ids_without_names_and_unloadable_datasets_are_errors(tmp_path):
    dataset = datasets.Dataset.from_dict({"tokens": [["a"]], "ner_tags": [[0]]})
    dataset.save_to_disk(str(tmp_path / "ids"))
    with pytest.raises(NerlstmError, match="tag ids without ClassLabel names"):
        read_hf(f"hf:{tmp_path / 'ids'}")
    result = run_cli("convert", "hf:no-such-org/no-such-dataset:test", "-o", "-")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: hf:no-such-org/no-such-dataset:test: cannot load")
    assert result.stderr.count("\n") == 1


def test_bad_rows_are_named_by_their_number(tmp_path):
    bad_tag = datasets.Dataset.from_dict({"tokens": [["a"], ["b", "c"]],
                                          "ner_tags": [["O"], ["O", "FOO"]]})
    bad_tag.save_to_disk(str(tmp_path / "tag"))
    result = run_cli("convert", f"hf:{tmp_path / 'tag'}", "-o", "-")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: hf:{tmp_path / 'tag'}:2: tag 'FOO' of token 1 "
                                    f"fits no scheme")
    short = datasets.Dataset.from_dict({"tokens": [["a", "b"]], "ner_tags": [["O"]]})
    short.save_to_disk(str(tmp_path / "short"))
    with pytest.raises(NerlstmError, match=":1: 2 tokens but 1 tags"):
        read_hf(f"hf:{tmp_path / 'short'}")


def test_names_with_and_without_a_split(tmp_path):
    assert split_name("hf:conll2003") == ("conll2003", None)
    assert split_name("hf:org/name:validation") == ("org/name", "validation")
    folder = tmp_path / "with:colon"
    folder.mkdir()
    assert split_name(f"hf:{folder}") == (str(folder), None)


def test_without_the_datasets_library_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as if not installed
    result = run_cli("convert", "hf:conll2003:test", "-o", "-")
    assert result.exit_code == 2
    assert result.stderr == ("error: reading hf: datasets needs the datasets library: pip "
                             "install 'nerlstm[hf]'\n")
