import json

import pytest
from conftest import DATA, SHARED, needs_shared, run_cli, write

from nerlstm.conll import Sentence
from nerlstm.labelmap import apply_label_map, parse_label_map


def test_inline_and_file_maps_rename_merge_and_drop(tmp_path):
    assert parse_label_map("person=PER, group=ORG,corporation=ORG,product=O,other=") == {
        "person": "PER", "group": "ORG", "corporation": "ORG", "product": None, "other": None}
    path = write(tmp_path / "map.txt", "# WNUT-17 to CoNLL\nperson = PER\n\ngroup=ORG  # merged\n")
    assert parse_label_map(str(path)) == {"person": "PER", "group": "ORG"}


def test_merged_neighbours_stay_two_entities_and_dropped_types_go():
    sentence = Sentence(["a", "b", "c", "d"], ["B-group", "B-corporation", "I-corporation",
                                               "B-product"])
    warnings = apply_label_map([sentence], {"group": "ORG", "corporation": "ORG",
                                            "product": None, "person": "PER"}, "iob2")
    assert sentence.tags == ["B-ORG", "B-ORG", "I-ORG", "O"]
    assert warnings == ["label map: types the data never holds: person"]
    iob1 = Sentence(["a", "b"], ["I-group", "I-corporation"])
    apply_label_map([iob1], {"group": "ORG", "corporation": "ORG"}, "iob1")
    assert iob1.tags == ["I-ORG", "B-ORG"]  # IOB1 separates two adjacent entities with B-


BAD_MAPS = {
    "person=PER,PER": "label map entry 'PER': expected from=to",
    "=PER": "expected from=to",
    "a b=PER": "expected from=to",
    "a=B,a=C": "a is mapped twice",
    "no-such-file": "no-such-file: --label-map: no such file",
}


@pytest.mark.parametrize("spec", BAD_MAPS)
def test_bad_maps_are_usage_errors(spec):
    result = run_cli("convert", DATA / "dev.txt", "-o", "-", "--label-map", spec)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and BAD_MAPS[spec] in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_bad_line_of_a_map_file_is_named(tmp_path):
    path = write(tmp_path / "map.txt", "person=PER\nlocation LOC\n")
    result = run_cli("convert", DATA / "dev.txt", "-o", "-", "--label-map", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:2: label map entry 'location LOC'")


def test_eval_with_a_map_and_the_types_on_one_side(tmp_path, trained_model):
    common = ["-m", trained_model, "--json", "--threads", "1"]
    renamed = run_cli("convert", DATA / "test.txt", "-o", "-", "--label-map",
                      "PER=person,LOC=place,ORG=ORG")
    data = write(tmp_path / "renamed.txt", renamed.stdout)
    plain = run_cli("eval", data, *common)
    assert "types the model never saw (scored as misses): person, place" in plain.stderr
    assert "the model knows that the data never holds" in plain.stderr
    assert "LOC, PER" in plain.stderr
    mapped = run_cli("eval", data, *common, "--label-map", "person=PER,place=LOC")
    assert mapped.exit_code == 0, mapped.output
    original = run_cli("eval", DATA / "test.txt", *common)
    assert json.loads(mapped.stdout) == json.loads(original.stdout)
    assert "warning" not in mapped.stderr
    dropped = run_cli("eval", DATA / "test.txt", *common, "--label-map", "MISC=O")
    assert json.loads(dropped.stdout)["per_type"]["MISC"]["support"] == 0
    assert "data never holds (each one predicted is a false positive; see --label-map): MISC" \
        in dropped.stderr


def test_train_takes_a_map_and_keeps_it_in_the_recipe(tmp_path):
    model = tmp_path / "m.pt"
    result = run_cli("train", DATA / "dev.txt", "-m", model, "--label-map", "MISC=O,ORG=GROUP",
                     "--epochs", "1", "--word-dim", "8", "--char-dim", "4", "--char-hidden",
                     "4", "--hidden", "8", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "entities: GROUP" in result.stderr and "MISC" not in result.stderr.split("config:")[0]
    info = run_cli("info", "-m", model, "--json")
    assert sorted(json.loads(info.stdout)["entity_types"]) == ["GROUP", "LOC", "PER"]
    recipe = run_cli("info", "-m", model, "--recipe")
    assert 'label_map = "MISC=O,ORG=GROUP"' in recipe.stdout


@needs_shared
@pytest.mark.slow
def test_wnut17_maps_onto_conll_types():
    result = run_cli("convert", SHARED / "wnut17" / "test.txt", "-o", "-", "--to", "conll",
                     "--label-map", "person=PER,location=LOC,corporation=ORG,group=ORG,"
                     "product=MISC,creative-work=MISC")
    assert result.exit_code == 0
    assert {line.split()[-1][2:] for line in result.stdout.split("\n")
            if line and line[-1] != "O"} == {"PER", "LOC", "ORG", "MISC"}
