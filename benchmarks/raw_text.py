"""Raw text as `nerlstm tag` reads it, scored against `nerlstm eval` on the same file.

Rebuilds plain text from a tagged CoNLL file (tokens joined back with ordinary spacing),
in two forms: one sentence a line, and each document's sentences joined into one line;
documents apart by a blank line. Tags each form with `nerlstm tag -f jsonl` (by documents,
the default, and with `--lines`), scores the entities by character offsets against the gold
spans, and prints the F1s beside `nerlstm eval`'s (by documents and `--sentences-alone`).

    python benchmarks/raw_text.py -m model.pt conll2003/test.txt
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nerlstm import schemes  # noqa: E402
from nerlstm.conll import read_tagged  # noqa: E402

NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "'s", "'S", "n't", "'re",
                   "'ve", "'ll", "'d", "'m", "''", "..."}
NO_SPACE_AFTER = {"(", "[", "{", "$", "``"}


def detokenized(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The tokens joined with ordinary spacing, and each token's offsets in that text."""
    text, offsets, quote_open, glue_next = "", [], False, True
    for token in tokens:
        glue = glue_next or token in NO_SPACE_BEFORE
        glue_next = token in NO_SPACE_AFTER
        if token == '"':
            glue, glue_next = (glue, True) if not quote_open else (True, False)
            quote_open = not quote_open
        if not glue:
            text += " "
        offsets.append((len(text), len(text) + len(token)))
        text += token
    return text, offsets


def rebuilt(path: str, form: str) -> tuple[list[str], list[set[tuple[int, int, str]]]]:
    """The text's lines and each line's gold entities (start, end, label) in that form:
    ``sentences`` (one a line) or ``paragraphs`` (a document's sentences on one line);
    documents apart by a blank line."""
    documents: dict[int, list[tuple[str, set]]] = {}
    for sentence in read_tagged(path).sentences:
        text, offsets = detokenized(sentence.tokens)
        spans = {(offsets[span.start][0], offsets[span.end - 1][1], span.type)
                 for span in schemes.spans(schemes.convert(sentence.tags, "iob2"))}
        documents.setdefault(sentence.document, []).append((text, spans))
    lines: list[str] = []
    gold: list[set] = []
    for sentences in documents.values():
        if lines:
            lines.append("")
            gold.append(set())
        if form == "sentences":
            lines += [text for text, _ in sentences]
            gold += [spans for _, spans in sentences]
            continue
        line, spans_of_line = "", set()
        for text, spans in sentences:
            shift = len(line) + 1 if line else 0
            line = f"{line} {text}" if line else text
            spans_of_line |= {(start + shift, end + shift, label) for start, end, label in spans}
        lines.append(line)
        gold.append(spans_of_line)
    return lines, gold


def micro_f1(gold: list[set], found: list[set]) -> float:
    correct = sum(len(g & f) for g, f in zip(gold, found))
    predicted, expected = sum(map(len, found)), sum(map(len, gold))
    precision = correct / predicted if predicted else 0.0
    recall = correct / expected if expected else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def tagged_f1(model: str, lines: list[str], gold: list[set], extra: list[str]) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as text:
        text.write("\n".join(lines) + "\n")
        text.flush()
        done = subprocess.run([sys.executable, "-m", "nerlstm", "tag", "-m", model, "-f",
                               "jsonl", text.name, *extra], capture_output=True, check=True)
    records = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    if len(records) != len(lines):
        raise SystemExit(f"error: {len(records)} output lines for {len(lines)} input lines")
    found = [{(e["start"], e["end"], e["label"]) for e in record["entities"]}
             for record in records]
    return micro_f1(gold, found)


def eval_f1(model: str, path: str, extra: list[str]) -> float:
    done = subprocess.run([sys.executable, "-m", "nerlstm", "eval", path, "-m", model,
                           "--json", *extra], capture_output=True, check=True)
    return json.loads(done.stdout)["f1"]


def measure(model: str, path: str) -> dict:
    """Every figure of the comparison, as fractions."""
    results = {"eval_documents_f1": eval_f1(model, path, []),
               "eval_sentences_alone_f1": eval_f1(model, path, ["--sentences-alone"])}
    for form in ("sentences", "paragraphs"):
        lines, gold = rebuilt(path, form)
        results[f"raw_{form}_documents_f1"] = tagged_f1(model, lines, gold, [])
        results[f"raw_{form}_lines_f1"] = tagged_f1(model, lines, gold, ["--lines"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="a tagged CoNLL file (its documents by -DOCSTART-)")
    parser.add_argument("-m", "--model", required=True)
    args = parser.parse_args()
    results = measure(args.model, args.data)
    print(f"eval by documents {results['eval_documents_f1'] * 100:.2f}, sentences alone "
          f"{results['eval_sentences_alone_f1'] * 100:.2f}")
    for form, what in (("sentences", "one sentence a line"),
                       ("paragraphs", "one document a line")):
        print(f"raw text, {what}: by documents {results[f'raw_{form}_documents_f1'] * 100:.2f}"
              f", --lines {results[f'raw_{form}_lines_f1'] * 100:.2f}")


if __name__ == "__main__":
    main()
