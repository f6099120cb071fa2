"""`nerlstm tag` as a pipeline tool: input kinds, output formats, scores, streaming."""

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import DATA, ROOT, default_sigint, run_cli

from nerlstm.tagging import has_bfloat16

TEXT = "Peter Blackburn visited Paris.\n\n  The EU said (Reuters) \"House.\" Smith's.\n"


@pytest.mark.parametrize("kind", ["text", "tokens"])
@pytest.mark.parametrize("fmt", ["inline", "conll", "jsonl"])
def test_every_line_input_and_output_combination(trained_model, kind, fmt):
    result = run_cli("tag", "-m", trained_model, "--input", kind, "--format", fmt, input=TEXT)
    assert result.exit_code == 0, result.output
    out = result.stdout
    if fmt == "inline":
        lines = out.split("\n")[:-1]
        assert len(lines) == 3 and lines[1] == ""
        unbracketed = [line.replace("]", "") for line in lines]
        for original, line in zip(TEXT.split("\n"), unbracketed):
            # removing "[TYPE " and "]" gives back the input line
            import re
            assert re.sub(r"\[[^ \]]+ ", "", line) == original
    elif fmt == "jsonl":
        objects = [json.loads(line) for line in out.splitlines()]
        assert [o["text"] for o in objects] == TEXT.split("\n")[:-1]
        for o in objects:
            for entity in o["entities"]:
                assert o["text"][entity["start"]:entity["end"]] == entity["text"]
                assert 0.0 <= entity["score"] <= 1.0
            for token in o["tokens"]:
                assert o["text"][token["start"]:token["end"]] == token["text"]
    else:
        sentences = out.split("\n\n")
        first = [line.split() for line in sentences[0].splitlines()]
        expected = (["Peter", "Blackburn", "visited", "Paris", "."] if kind == "text"
                    else ["Peter", "Blackburn", "visited", "Paris."])
        assert [row[0] for row in first] == expected
        assert all(row[1] == "O" or row[1][:2] in ("B-", "I-") for row in first)


def test_text_input_is_tokenized_and_offsets_slice_back(trained_model):
    result = run_cli("tag", "-m", trained_model, "--format", "jsonl", input=TEXT)
    third = json.loads(result.stdout.splitlines()[2])
    assert [t["text"] for t in third["tokens"]] == [
        "The", "EU", "said", "(", "Reuters", ")", '"', "House", ".", '"', "Smith", "'s", "."]


def test_conll_input_appends_a_tag_column_and_keeps_the_rest(trained_model):
    source = (DATA / "test.txt").read_text(encoding="utf-8")
    result = run_cli("tag", "-m", trained_model, "--input", "conll", input=source)
    assert result.exit_code == 0, result.output
    given, got = source.splitlines(), result.stdout.splitlines()
    assert len(got) == len(given)
    for before, after in zip(given, got):
        if before.strip():
            assert after.startswith(before.rstrip() + " ")
            assert len(after.split()) == len(before.split()) + 1
        else:
            assert after == ""


def test_min_score_drops_unsure_entities(trained_model):
    every = run_cli("tag", "-m", trained_model, "-f", "jsonl", input=TEXT).stdout
    sure = run_cli("tag", "-m", trained_model, "-f", "jsonl", "--min-score", "0.999",
                   input=TEXT).stdout
    scores = [e["score"] for line in every.splitlines() for e in json.loads(line)["entities"]]
    kept = [e["score"] for line in sure.splitlines() for e in json.loads(line)["entities"]]
    assert kept == [s for s in scores if s >= 0.999]


def test_files_and_stdin_dash(trained_model, tmp_path):
    first = tmp_path / "a.txt"
    first.write_text("Peter visited Paris .\n", encoding="utf-8")
    result = run_cli("tag", "-m", trained_model, first, "-", first, input="EU said .\n")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 3


def test_undecodable_input_names_the_line(trained_model):
    result = run_cli("tag", "-m", trained_model, input=b"fine line\nbad \xff byte\n")
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: <stdin>:2: byte 0xff")


def test_a_very_long_line_is_tagged(trained_model):
    line = " ".join(["Peter", "Blackburn", "visited", "Paris", "."] * 1200)
    result = run_cli("tag", "-m", trained_model, "-i", "tokens", input=line + "\n")
    assert result.exit_code == 0
    assert result.stdout.count("[") >= 1 and len(result.stdout.splitlines()) == 1


def _nerlstm(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "nerlstm", *map(str, args)],
                          capture_output=True, cwd=ROOT, **kwargs)


def test_head_closing_the_pipe_is_quiet(trained_model):
    lines = "Peter Blackburn visited Paris .\n" * 5000
    command = (f"{sys.executable} -m nerlstm tag -m {trained_model} -b 64 | head -n 2")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], input=lines.encode(),
                          capture_output=True, cwd=ROOT)
    assert done.stdout.decode().count("\n") == 2
    assert done.stderr == b"", done.stderr.decode()
    assert done.returncode == 0


def start_tagger(model, stderr=None) -> subprocess.Popen:
    """`nerlstm tag` in a pipe, with stdout block-buffered as a user's shell leaves it."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    return subprocess.Popen([sys.executable, "-m", "nerlstm", "tag", "-m", str(model)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                            cwd=ROOT, env=env, preexec_fn=default_sigint)


def read_line(stream, timeout: float = 60) -> bytes:
    """One line from a pipe, or fail after ``timeout`` seconds instead of hanging."""
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no complete line within {timeout} s; got {line!r}"
        chunk = os.read(stream.fileno(), 1)
        assert chunk, f"the pipe closed after {line!r}"
        line += chunk
    return line


def test_lines_are_answered_before_the_input_ends(trained_model):
    """A pause in the input answers the lines held so far, without waiting for a full batch
    or for the output buffer to fill."""
    process = start_tagger(trained_model)
    try:
        process.stdin.write(b"Peter visited Paris .\n")
        process.stdin.flush()
        assert b"Paris" in read_line(process.stdout)
        process.stdin.write(b"Smith went to Berlin .\n")
        process.stdin.flush()
        assert b"Berlin" in read_line(process.stdout)
    finally:
        process.stdin.close()
        process.wait(timeout=60)


def _peak_rss_kib(model, lines: int) -> int:
    script = ("import resource, sys\nfrom nerlstm.cli import main\nsys.argv = ['nerlstm', 'tag', "
              f"'-m', {str(model)!r}, '-i', 'tokens', '-b', '128']\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "sys.stderr.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n")
    text = "".join(f"Person{n} met Agent{n * 7} in City{n % 977} on day {n} .\n"
                   for n in range(lines))
    done = subprocess.run([sys.executable, "-c", script], input=text.encode(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    return int(done.stderr.decode().strip().splitlines()[-1])


def test_memory_stays_flat_on_a_large_input(trained_model):
    small = _peak_rss_kib(trained_model, 2_000)
    large = _peak_rss_kib(trained_model, 40_000)
    assert large < small * 1.15 + 10_000, (small, large)


def test_ctrl_c_exits_130_quietly(trained_model):
    process = start_tagger(trained_model, stderr=subprocess.PIPE)
    process.stdin.write(b"Peter visited Paris .\n")
    process.stdin.flush()
    assert read_line(process.stdout)  # the model is loaded and waiting for more input
    process.send_signal(signal.SIGINT)
    # stdin stays open, as at a terminal: the signal alone has to end the process.
    assert process.wait(timeout=60) == 130
    assert process.stderr.read() == b""
    process.stdin.close()


def test_conll_input_token_column(trained_model):
    source = "1 Peter NNP\n2 visited VBD\n3 Paris NNP\n\n"
    result = run_cli("tag", "-m", trained_model, "-i", "conll", "--token-column", "1",
                     "-f", "jsonl", input=source)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["text"] == "Peter visited Paris"


def _tag_column(output: str) -> list[str]:
    return [line.split()[-1] for line in output.splitlines()
            if line.strip() and not line.startswith("-DOCSTART-")]


def test_conll_input_reads_documents_as_eval_does(trained_model, tmp_path):
    """Whatever the batch size, tag reads each document together, as eval does."""
    predictions = tmp_path / "predictions.txt"
    run_cli("eval", DATA / "test.txt", "-m", trained_model, "--predictions", predictions)
    expected = _tag_column(predictions.read_text(encoding="utf-8"))
    source = (DATA / "test.txt").read_text(encoding="utf-8")
    for batch_size in ("1", "7", "256"):
        result = run_cli("tag", "-m", trained_model, "--input", "conll", "-b", batch_size,
                         input=source)
        assert _tag_column(result.stdout) == expected


def test_lines_up_to_a_blank_line_are_documents_for_line_input(trained_model, tmp_path):
    source = (DATA / "test.txt").read_text(encoding="utf-8")
    from_conll = _tag_column(run_cli("tag", "-m", trained_model, "--input", "conll",
                                     input=source).stdout)
    # The same sentences one per line, a blank line between documents.
    paragraphs = []
    for block in source.split("-DOCSTART- -X- -X- O"):
        sentences = [" ".join(line.split()[0] for line in chunk.splitlines())
                     for chunk in block.strip().split("\n\n") if chunk.strip()]
        paragraphs.append("\n".join(sentences))
    text = "\n\n".join(p for p in paragraphs if p) + "\n"
    tagged = run_cli("tag", "-m", trained_model, "--input", "tokens", "-f", "conll",
                     input=text)
    assert _tag_column(tagged.stdout) == from_conll
    alone = run_cli("tag", "-m", trained_model, "--input", "tokens", "--lines", "-f", "conll",
                    input=text)
    assert _tag_column(alone.stdout) != from_conll  # one line at a time reads less context
    predictions = tmp_path / "alone.txt"
    run_cli("eval", DATA / "test.txt", "-m", trained_model, "--sentences-alone",
            "--predictions", predictions)
    assert _tag_column(alone.stdout) == _tag_column(predictions.read_text(encoding="utf-8"))


def test_threads_tag_parts_at_once_and_change_nothing(trained_model, monkeypatch):
    from nerlstm import tagging

    pools = []

    class CountedPool(tagging.ThreadPoolExecutor):
        def __init__(self, workers):
            pools.append(workers)
            super().__init__(workers)

    monkeypatch.setattr(tagging, "ThreadPoolExecutor", CountedPool)
    source = (DATA / "test.txt").read_text(encoding="utf-8") * 4  # enough to share
    one = run_cli("tag", "-m", trained_model, "--input", "conll", "-b", "4096", "--threads", "1",
                  input=source)
    assert one.exit_code == 0 and not pools
    two = run_cli("tag", "-m", trained_model, "--input", "conll", "-b", "4096", "--threads", "2",
                  input=source)
    assert two.exit_code == 0 and pools == [2]
    assert two.stdout == one.stdout


BF16 = has_bfloat16("cpu")


@pytest.mark.skipif(not BF16, reason="this CPU has no bfloat16 instructions")
def test_bfloat16_tags_as_float32_does_on_the_test_data(trained_model):
    test = DATA / "test.txt"
    plain = run_cli("eval", test, "-m", trained_model, "--json")
    fast = run_cli("eval", test, "-m", trained_model, "--json", "--precision", "bfloat16")
    assert plain.exit_code == 0 and fast.exit_code == 0, fast.output
    assert json.loads(fast.stdout)["f1"] == pytest.approx(json.loads(plain.stdout)["f1"], abs=0.01)
    line = "Peter Blackburn visited Paris .\n" * 3
    tagged = run_cli("tag", "-m", trained_model, "-i", "tokens", "--precision", "bfloat16",
                     input=line)
    as_float32 = run_cli("tag", "-m", trained_model, "-i", "tokens", input=line)
    assert tagged.exit_code == 0 and tagged.stdout.count("Peter Blackburn]") == 3
    assert tagged.stdout == as_float32.stdout


@pytest.mark.skipif(not BF16, reason="this CPU has no bfloat16 instructions")
def test_bfloat16_runs_the_word_bilstm_in_bfloat16(trained_model):
    from nerlstm.modelfile import load_model
    from nerlstm.tagging import use_precision

    tagger, _ = load_model(str(trained_model))
    batch = tagger.encoder.batch([["Peter", "Blackburn", "visited", "Paris", "."]], [0])
    with torch.inference_mode():
        plain = tagger.model.eval().emissions(batch)
        use_precision(tagger, "bfloat16")
        fast = tagger.model.emissions(batch)
    assert fast.dtype == torch.float32
    assert not torch.equal(fast, plain) and torch.allclose(fast, plain, atol=0.05)


def test_bfloat16_without_the_instructions_is_a_usage_error(trained_model, monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    result = run_cli("tag", "-m", trained_model, "--precision", "bfloat16", input="Paris\n")
    assert result.exit_code == 2
    assert result.output.strip() == ("error: --precision bfloat16: this CPU has no bfloat16 "
                                     "instructions (AVX512-BF16 or AMX), where it is slower "
                                     "than float32")


def test_conll_jsonl_has_a_record_per_sentence_with_its_document_and_line(trained_model):
    source = ("-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\n\n\n-DOCSTART- -X- O O\n\n"
              "Peter NNP B-PER\nBlackburn NNP I-PER\n\nParis NNP B-LOC\n\n")
    result = run_cli("tag", "-m", trained_model, "-i", "conll", "-f", "jsonl", input=source)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["text"], r["document"], r["line"]) for r in records] == [
        ("EU rejects", 1, 3), ("Peter Blackburn", 2, 9), ("Paris", 2, 12)]


def _blocks(output: str) -> list[list[str]]:
    """Output in conll format cut after each blank line: one block per input line of text."""
    blocks, block = [], []
    for line in output.split("\n")[:-1]:
        if line:
            block.append(line.split()[0])
        else:
            blocks.append(block)
            block = []
    assert block == []  # the output ends with a blank line
    return blocks


@pytest.mark.parametrize("kind", ["text", "tokens"])
def test_conll_output_of_lines_gives_one_blank_line_for_an_empty_one(trained_model, kind):
    source = "\n\nPeter visited Paris\n\n\nEU said\n\n"
    result = run_cli("tag", "-m", trained_model, "-i", kind, "-f", "conll", input=source)
    assert result.exit_code == 0, result.output
    assert _blocks(result.stdout) == [[], [], ["Peter", "visited", "Paris"], [], [],
                                      ["EU", "said"], []]


@pytest.mark.parametrize("source", [
    "\n\nEU NNP\nsays VBZ\n\n\n\n-DOCSTART- -X-\nParis NNP\n\n\n",
    "EU NNP\n\nParis NNP",  # no line end at the end
    "-DOCSTART- -X-\n\n",  # no sentence at all
])
def test_conll_output_of_columns_keeps_every_line_in_place(trained_model, source):
    result = run_cli("tag", "-m", trained_model, "-i", "conll", input=source)
    assert result.exit_code == 0, result.output
    given, got = source.split("\n"), result.stdout.split("\n")
    if given[-1]:  # a last line without its end gets one
        given.append("")
    assert len(got) == len(given)
    for before, after in zip(given, got):
        assert after == (before + " " + after.split()[-1] if before else "")


@pytest.mark.parametrize("source, message", [
    ("EU NNP\nsays VBZ\n\nParis\n", "<stdin>:4: the token column 1 does not exist: the line "
                                    "has 1 column (use --token-column / --tag-column)"),
    ("EU NNP B-ORG\nsays VBZ\n", "<stdin>:2: expected 3 columns like the lines above, found 2"),
])
def test_conll_input_is_read_as_eval_reads_it(trained_model, source, message):
    """The column rules and errors of eval's reader: no fallback to another column."""
    result = run_cli("tag", "-m", trained_model, "-i", "conll", "--token-column", "1",
                     input=source)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {message}"


def test_column_records_answer_a_finished_sentence_at_a_pause():
    from nerlstm.records import column_records, format_conll
    from nerlstm.textio import PAUSE, Line

    texts = ["-DOCSTART- x", "", "EU B", "", None, "", "Paris B", "says O", None, "", ""]
    lines = [None if text is None else Line("<stdin>", number, text)
             for number, text in enumerate(texts, start=1)]
    records = list(column_records(lines))
    assert [None if r is PAUSE else (r.text, r.line, len(r.before), len(r.after))
            for r in records] == [("EU", 3, 2, 1), PAUSE, PAUSE, ("Paris says", 7, 1, 2)]
    tags = {"EU": ["B-ORG"], "Paris says": ["B-LOC", "O"]}
    written = [format_conll(r, tagging_result(tags[r.text])) for r in records if r is not PAUSE]
    assert "\n".join(written).split("\n") == [
        "-DOCSTART- x O", "", "EU B B-ORG", "", "", "Paris B B-LOC", "says O O", "", ""]


def tagging_result(tags):
    from nerlstm.records import Tagged

    return Tagged(tags, [])
