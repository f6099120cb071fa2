"""nerlstm from Python, as a user calls it: load, tag, pipe, tag_tokens, train, evaluate."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA, ROOT, run_cli

import nerlstm
from nerlstm.conll import read_conll


@pytest.fixture(scope="module")
def tagger(trained_model):
    return nerlstm.load(trained_model, threads=1)


def test_import_nerlstm_loads_no_torch():
    done = subprocess.run([sys.executable, "-c", "import sys, nerlstm; nerlstm.Config(); "
                           "print('torch' in sys.modules)"], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_entities_carry_character_offsets_into_the_text(tagger):
    sentences = read_conll(str(DATA / "test.txt"))
    text = "\n".join(" ".join(s.tokens) for s in sentences[:40])
    result = tagger(text)
    assert result.text == text and result.entities
    for entity in result.entities:
        assert text[entity.start:entity.end] == entity.text
        assert entity.label in tagger.labels and 0.0 <= entity.score <= 1.0
    for token in result.tokens:
        assert text[token.start:token.end] == token.text


def test_a_text_is_not_read_character_by_character(tagger):
    result = tagger("Peter Blackburn visited Paris")
    assert [token.text for token in result.tokens] == ["Peter", "Blackburn", "visited", "Paris"]


def test_a_text_is_tagged_as_the_command_tags_a_document(tagger, trained_model):
    lines = [" ".join(s.tokens) for s in read_conll(str(DATA / "test.txt"))[:30]]
    from_command = run_cli("tag", "-m", trained_model, "-f", "jsonl", "--threads", "1",
                           input="\n".join(lines) + "\n")
    import json

    command_entities = [(e["text"], e["label"]) for line in from_command.stdout.splitlines()
                        for e in json.loads(line)["entities"]]
    api_entities = [(e.text, e.label) for e in tagger("\n".join(lines)).entities]
    assert api_entities == command_entities


def test_pipe_streams_results_in_order_before_the_input_ends(tagger):
    texts = ["Peter Blackburn visited Paris.", "", "EU rejects German call."]
    piped = list(tagger.pipe(texts, batch_size=2))
    assert [r.text for r in piped] == texts
    assert [r.to_dict() for r in piped] == [tagger(t).to_dict() for t in texts]
    consumed = []

    def endless():
        while True:
            consumed.append(1)
            yield "Peter visited Paris."

    stream = tagger.pipe(endless(), batch_size=4)
    first = next(stream)
    assert first.entities is not None and len(consumed) < 10_000  # no waiting for the end


def test_tag_tokens_and_the_type_errors(tagger):
    results = tagger.tag_tokens([["EU", "rejects", "German", "call"], ["Paris"]])
    assert [r.text for r in results] == ["EU rejects German call", "Paris"]
    for result in results:
        for entity in result.entities:
            assert result.text[entity.start:entity.end] == entity.text
    with pytest.raises(TypeError, match="not a string"):
        tagger.tag_tokens("EU rejects German call")
    with pytest.raises(TypeError, match="sentence 1"):
        tagger.tag_tokens([["EU"], "rejects German"])
    with pytest.raises(TypeError, match="takes strings"):
        list(tagger.pipe([["EU", "rejects"]]))
    with pytest.raises(TypeError):
        tagger(["EU", "rejects"])


def test_train_then_evaluate_round_trip(tmp_path):
    model = tmp_path / "m.pt"
    config = nerlstm.Config(word_dim=16, char_dim=8, char_hidden=8, hidden=16, epochs=2,
                            seed=4)
    result = nerlstm.train(DATA / "train.txt", model, dev=DATA / "dev.txt", config=config,
                           threads=1)
    assert isinstance(result, nerlstm.TrainingResult)
    assert result.best_epoch in (1, 2) and result.epochs_run == 2 and model.is_file()
    evaluation = nerlstm.evaluate(DATA / "test.txt", model, threads=1)
    assert set(evaluation.scores) >= {"precision", "recall", "f1", "per_type"}
    from_command = run_cli("eval", DATA / "test.txt", "-m", model, "--json", "--threads", "1")
    import json

    assert json.loads(from_command.stdout)["f1"] == evaluation.scores["f1"]


def test_bad_input_raises_the_one_error_type(tmp_path):
    with pytest.raises(nerlstm.NerlstmError, match="not a model file"):
        nerlstm.load(DATA / "test.txt")
    with pytest.raises(nerlstm.NerlstmError) as caught:
        nerlstm.train(tmp_path / "missing.txt", tmp_path / "m.pt")
    assert caught.value.path == str(tmp_path / "missing.txt")
    with pytest.raises(nerlstm.NerlstmError, match="batch_size = 0"):
        nerlstm.train(DATA / "train.txt", tmp_path / "m.pt", config=nerlstm.Config(batch_size=0))
    assert not (tmp_path / "m.pt").exists()


def test_the_public_names_have_docstrings_and_type_hints():
    for name in nerlstm.__all__:
        if name == "__version__":
            continue
        item = getattr(nerlstm, name)
        assert item.__doc__, name
    for method in ("__call__", "pipe", "tag_tokens"):
        function = getattr(nerlstm.TextTagger, method)
        assert function.__doc__ and function.__annotations__.get("return"), method


def test_the_readme_python_examples_run(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) >= 2
    (tmp_path / "data").symlink_to(DATA)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    assert Path("model.pt").is_file()




def test_pipe_equals_tagging_each_text_alone_across_batches(tagger):
    sentences = [" ".join(s.tokens) for s in read_conll(str(DATA / "test.txt"))]
    # documents of several lines and sentences, cut into batches mid-stream
    texts = ["\n".join(sentences[i:i + 5]) + " " + sentences[i + 5] for i in range(0, 90, 6)]
    piped = list(tagger.pipe(texts, batch_size=2))
    alone = [tagger(text) for text in texts]
    assert [r.tokens for r in piped] == [r.tokens for r in alone]
    spans = [[(e.start, e.end, e.label, e.text) for e in r.entities] for r in piped]
    assert spans == [[(e.start, e.end, e.label, e.text) for e in r.entities] for r in alone]
    scores = [e.score for r in piped for e in r.entities]
    # batches of other shapes round the floats apart in the last digits only
    assert scores == pytest.approx([e.score for r in alone for e in r.entities], abs=1e-4)


PIPE_PEAK = """
import resource, sys, nerlstm
tagger = nerlstm.load(sys.argv[1], threads=1)
count = int(sys.argv[2])
texts = (f"Peter Blackburn {n} visited Paris ." for n in range(count))
found = sum(len(result.entities) for result in tagger.pipe(texts))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, found)
"""


@pytest.mark.slow
def test_pipe_over_100000_texts_runs_at_flat_memory(trained_model):
    """Peak memory over 100,000 texts is that of 10,000: results are streamed, not held."""
    peaks = {}
    for count in (10_000, 100_000):
        done = subprocess.run([sys.executable, "-c", PIPE_PEAK, str(trained_model), str(count)],
                              capture_output=True, text=True, check=True)
        peak_kib, found = map(int, done.stdout.split())
        peaks[count] = peak_kib / 1024
        assert found > 0
    assert peaks[100_000] - peaks[10_000] < 20, peaks  # MiB
