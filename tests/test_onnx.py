"""nerlstm export, and tagging an .onnx model on onnxruntime and numpy, against the torch path."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import DATA, run_cli

pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'nerlstm[onnx]')")
onnx = pytest.importorskip("onnx", reason="the onnx extra (pip install 'nerlstm[onnx]')")

import nerlstm  # noqa: E402
from nerlstm import schemes  # noqa: E402
from nerlstm.api import load_tagger  # noqa: E402
from nerlstm.batching import Encoder, context_ids  # noqa: E402
from nerlstm.config import Config  # noqa: E402
from nerlstm.conll import read_conll  # noqa: E402
from nerlstm.crf import CrfScores, forward_backward, viterbi  # noqa: E402
from nerlstm.model import BiLstmCrf  # noqa: E402
from nerlstm.modelfile import save_model  # noqa: E402
from nerlstm.onnx_tagger import best_paths, load_onnx  # noqa: E402
from nerlstm.onnx_tagger import forward_backward as numpy_forward_backward  # noqa: E402
from nerlstm.tagging import Tagger  # noqa: E402
from nerlstm.vocab import TagVocab, Vocab  # noqa: E402

TEXT = "Peter Blackburn visited Paris, where the European Commission met on Monday."


@pytest.fixture(scope="module")
def onnx_model(trained_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    result = run_cli("export", "-m", trained_model, "-o", path)
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def test_sentences():
    return read_conll(str(DATA / "test.txt"))


def test_export_writes_one_graph_and_plain_json_metadata(onnx_model, trained_model):
    model = onnx.load(str(onnx_model))
    onnx.checker.check_model(model)
    inputs = {entry.name for entry in model.graph.input}
    assert {"word_ids", "lengths", "char_ids", "word_to_distinct", "group_ids"} <= inputs
    assert [entry.name for entry in model.graph.output] == ["emissions"]
    batch, length = model.graph.input[0].type.tensor_type.shape.dim
    assert (batch.dim_param, length.dim_param) == ("batch", "length")  # dynamic
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    assert set(metadata) == {"nerlstm"}
    values = json.loads(metadata["nerlstm"])
    payload = torch.load(trained_model, weights_only=True)
    assert values["tags"] == payload["tags"] and values["words"] == payload["words"]
    assert values["train_scheme"] == payload["train_scheme"]
    assert values["config"]["tokenizer"] == "default" and values["quantized"] is None
    assert len(values["crf"]["transitions"]) == len(payload["tags"])


def test_onnx_tags_equal_the_torch_path(onnx_model, trained_model, test_sentences):
    tokens = [sentence.tokens for sentence in test_sentences]
    contexts = context_ids([sentence.document for sentence in test_sentences])
    torch_tagger, _ = load_tagger(trained_model, device="cpu", threads=1)
    onnx_tagger, _ = load_tagger(onnx_model, threads=1)
    for chosen in (contexts, None):
        expected = torch_tagger.tag(tokens, 16, scores=True, contexts=chosen)
        found = onnx_tagger.tag(tokens, 16, scores=True, contexts=chosen)
        assert [t.tags for t in found] == [t.tags for t in expected]
        for mine, theirs in zip(found, expected):
            assert [(e.type, e.start, e.end) for e in mine.entities] == \
                [(e.type, e.start, e.end) for e in theirs.entities]
            assert [e.score for e in mine.entities] == pytest.approx(
                [e.score for e in theirs.entities], abs=1e-3)
    two_threads, _ = load_tagger(onnx_model, threads=2)  # batches run in two threads at once
    assert two_threads.predict(tokens, 16, contexts=contexts) == torch_tagger.predict(
        tokens, 16, contexts=contexts)


def test_python_api_loads_an_onnx_file(onnx_model, trained_model):
    expected = nerlstm.load(trained_model, threads=1)
    found = nerlstm.load(onnx_model, threads=1)
    assert found.labels == expected.labels and found.tokenizer == expected.tokenizer
    mine, theirs = found(TEXT).to_dict(), expected(TEXT).to_dict()
    for entity in mine["entities"] + theirs["entities"]:
        entity["score"] = round(entity["score"], 3)
    assert mine == theirs
    assert [r.to_dict() for r in found.pipe([TEXT, "", "EU rejects German call"],
                                            scores=False)] == \
        [r.to_dict() for r in expected.pipe([TEXT, "", "EU rejects German call"],
                                            scores=False)]
    sentences = [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    assert [r.to_dict() for r in found.tag_tokens(sentences, scores=False)] == \
        [r.to_dict() for r in expected.tag_tokens(sentences, scores=False)]


@pytest.mark.parametrize("form", ["inline", "jsonl", "conll"])
def test_tag_and_eval_with_an_onnx_model_as_with_the_torch_one(onnx_model, trained_model,
                                                               form):
    text = (DATA / "test.txt").read_text(encoding="utf-8")
    args = ["--input", "conll"] if form == "conll" else []
    lines = "\n".join(" ".join(s.tokens) for s in read_conll(str(DATA / "test.txt"))[:30])
    source = text if form == "conll" else lines
    expected = run_cli("tag", "-m", trained_model, "-f", form, "--threads", "1", *args,
                       input=source)
    found = run_cli("tag", "-m", onnx_model, "-f", form, "--threads", "1", *args, input=source)
    assert found.exit_code == expected.exit_code == 0, found.output
    if form == "jsonl":  # probabilities agree to float32 rounding
        rows = [[json.loads(line) for line in r.stdout.splitlines()] for r in (found, expected)]
        for row in rows[0] + rows[1]:
            for entity in row["entities"]:
                entity["score"] = round(entity["score"], 2)
        assert rows[0] == rows[1]
    else:
        assert found.stdout == expected.stdout


def test_eval_with_an_onnx_model_gives_the_torch_scores(onnx_model, trained_model):
    expected = run_cli("eval", DATA / "test.txt", "-m", trained_model, "--json")
    found = run_cli("eval", DATA / "test.txt", "-m", onnx_model, "--json")
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout.splitlines()[-1]) == json.loads(
        expected.stdout.splitlines()[-1])


NO_TORCH = """
import io, json, sys
from nerlstm.cli import main
model, data = sys.argv[1:3]
def run(*args, stdin=""):
    sys.argv = ["nerlstm", *args]
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()))
    try:
        main()
    except SystemExit as exit:
        assert not exit.code, exit.code
run("tag", "-m", model, "-f", "jsonl", stdin="Peter Blackburn visited Paris.\\n")
run("eval", data, "-m", model, "--json")
import nerlstm
nerlstm.load(model)("EU rejects German call.")
print("torch imported:", "torch" in sys.modules, file=sys.stderr)
"""


def test_the_onnx_path_never_imports_torch(onnx_model):
    done = subprocess.run([sys.executable, "-c", NO_TORCH, str(onnx_model),
                           str(DATA / "test.txt")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"label": "' in done.stdout and '"f1"' in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "torch imported: False"


def test_without_onnxruntime_one_clear_line():
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "from nerlstm.cli import main; sys.argv = ['nerlstm', 'tag', '-m', 'model.onnx']\n"
            "main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          input="Paris\n", timeout=60)
    assert done.returncode == 1
    assert done.stderr == ("error: tagging with an .onnx model needs onnxruntime: pip install "
                           "'nerlstm[onnx]'\n")


def test_bad_onnx_files_and_options_are_one_line_errors(tmp_path, onnx_model, trained_model):
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"not a model at all")
    bare = tmp_path / "bare.onnx"
    bare_model = onnx.load(str(onnx_model))
    del bare_model.metadata_props[:]
    onnx.save(bare_model, str(bare))
    cases = [
        (["tag", "-m", tmp_path / "absent.onnx"], 1, "no such model file"),
        (["tag", "-m", fake], 1, "not an ONNX model, or a damaged one"),
        (["tag", "-m", bare], 1, "not a nerlstm ONNX file: no nerlstm metadata"),
        (["tag", "-m", onnx_model, "--precision", "bfloat16"], 2, "runs as it was exported"),
        (["tag", "-m", onnx_model, "--device", "cuda"], 2, "runs on the CPU"),
        (["export", "-m", trained_model, "-o", tmp_path / "model.bin"], 2, "ending in .onnx"),
        (["export", "-m", fake, "-o", tmp_path / "x.onnx"], 1, "not a model file"),
        (["export", "-m", trained_model, "-o", tmp_path / "no" / "x.onnx"], 1, "no such folder"),
    ]
    for args, code, message in cases:
        result = run_cli(*args, input="Paris\n")
        assert result.exit_code == code, (args, result.output)
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert "Traceback" not in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_int8_export_tags_about_as_well(trained_model, onnx_model, tmp_path):
    path = tmp_path / "int8.onnx"
    result = run_cli("export", "-m", trained_model, "-o", path, "--quantize", "int8")
    assert result.exit_code == 0, result.output
    assert path.stat().st_size < 0.5 * onnx_model.stat().st_size
    graph = onnx.load(str(path)).graph
    loop = next(node for node in graph.node if node.op_type == "Loop")
    ops = {node.op_type for node in [*graph.node, *loop.attribute[0].g.node]}
    assert "DynamicQuantizeLSTM" in ops and "MatMulInteger" in ops
    assert "Conv" in ops and "ConvInteger" not in ops  # the character CNN stays float32
    found = run_cli("eval", DATA / "test.txt", "-m", path, "--json")
    expected = run_cli("eval", DATA / "test.txt", "-m", trained_model, "--json")
    f1 = [json.loads(r.stdout.splitlines()[-1])["f1"] for r in (found, expected)]
    assert abs(f1[0] - f1[1]) < 0.05


def small_model(tmp_path, **settings) -> Tagger:
    """A model of random weights, saved: the network shapes a trained one may have."""
    torch.manual_seed(0)
    config = Config(word_dim=8, char_dim=5, char_hidden=4, hidden=6, **settings)
    sentences = read_conll(str(DATA / "train.txt"))[:50]
    tags = sorted({tag for sentence in sentences for tag in sentence.tags})
    words = Vocab(sorted({t for s in sentences for t in s.tokens}))
    chars = Vocab(sorted({c for s in sentences for t in s.tokens for c in t}))
    model = BiLstmCrf(config, len(words), len(chars), len(tags))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)  # scores far apart: no near ties between the two runtimes
    model.eval()
    tagger = Tagger(model, Encoder(words, chars, TagVocab(tags), config.doc_context), "iob2")
    save_model(tagger, str(tmp_path / "small.pt"), {})
    return tagger


@pytest.mark.parametrize("settings", [
    {"char_encoder": "lstm", "doc_context": False},
    {"char_encoder": "cnn", "char_cnn_tanh": False, "doc_context": True, "layers": 2},
    {"char_encoder": "lstm", "doc_context": True, "layers": 3},
    {"char_encoder": "cnn", "doc_context": True, "doc_summary": True},
    {"char_encoder": "cnn", "doc_context": True, "char_projection": 7},
    {"char_encoder": "cnn", "doc_context": True, "char_cnn_width": 5},
    {"char_encoder": "lstm", "doc_context": False, "char_projection": 5},
])
def test_emissions_equal_torch_for_each_network_shape(tmp_path, settings):
    from nerlstm.onnx_export import export

    tagger = small_model(tmp_path, **settings)
    export(str(tmp_path / "small.pt"), str(tmp_path / "small.onnx"))
    onnx_tagger, _ = load_onnx(tmp_path / "small.onnx")
    sentences = read_conll(str(DATA / "test.txt"))[:40]
    tokens = [s.tokens + ["unseen-word", "x" * 100] for s in sentences]
    contexts = [index // 7 for index in range(len(tokens))]
    indices = sorted(range(len(tokens)), key=lambda index: -len(tokens[index]))
    batch = tagger.encoder.batch(tokens, indices, contexts=contexts)
    with torch.inference_mode():
        expected = tagger.model.emissions(batch).numpy()
    found, _ = onnx_tagger.emissions(tokens, indices, contexts)
    mask = batch.mask.numpy()
    assert np.allclose(found[mask], expected[mask], atol=1e-4)
    assert onnx_tagger.predict(tokens, 8, contexts=contexts) == tagger.predict(
        tokens, 8, contexts=contexts)


@pytest.mark.parametrize("scheme", ["iob2", "bioes"])
def test_numpy_crf_matches_the_torch_crf(scheme):
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    if scheme == "bioes":
        tags += ["E-PER", "S-PER", "E-LOC", "S-LOC"]
    generator = torch.Generator().manual_seed(5)
    emissions = torch.randn(7, 9, len(tags), generator=generator) * 2
    lengths = torch.tensor([9, 9, 5, 4, 3, 1, 1])
    mask = torch.arange(9)[None, :] < lengths[:, None]
    may_start, may_end, may_follow = schemes.allowed_transitions(tags, scheme)
    raw = [torch.randn(len(tags), generator=generator), torch.randn(len(tags), generator=generator),
           torch.randn(len(tags), len(tags), generator=generator)]
    allowed = [torch.tensor(a) for a in (may_start, may_end, may_follow)]
    scores = CrfScores(*(r.masked_fill(~a, -1e4) for r, a in zip(raw, allowed)))
    arrays = [value.numpy() for value in scores]
    expected = viterbi(emissions, mask, scores).numpy()
    found = best_paths(emissions.numpy(), lengths.numpy(), *arrays)
    for row, length in enumerate(lengths.tolist()):
        assert found[row, :length].tolist() == expected[row, :length].tolist()
    alpha, beta, log_z = forward_backward(emissions, mask, scores)
    mine = numpy_forward_backward(emissions.numpy(), lengths.numpy(), *arrays)
    assert np.allclose(mine[2], log_z.numpy(), atol=1e-4)
    for row, length in enumerate(lengths.tolist()):
        assert np.allclose(mine[0][row, :length], alpha[row, :length].numpy(), atol=1e-3)
        assert np.allclose(mine[1][row, :length], beta[row, :length].numpy(), atol=1e-3)
    with pytest.raises(ValueError, match="longest first"):  # the rows still going: a prefix
        best_paths(emissions.numpy(), lengths.flip(0).numpy(), *arrays)
