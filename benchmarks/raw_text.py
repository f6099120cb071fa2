"""Raw text as `nerlstm tag` reads it, scored against `nerlstm eval` on the same file.

Rebuilds plain text from a tagged CoNLL file (tokens joined back with ordinary spacing),
in two forms: one sentence a line, and each document's sentences joined into one line;
documents apart by a blank line. Tags each form with `nerlstm tag -f jsonl` (by documents,
the default, and with `--lines`), scores the entities by character offsets against the gold
spans, and prints the F1s beside `nerlstm eval`'s (by documents and `--sentences-alone`).
Also: each form's F1 on tables (documents whose sentences average under TABLE_TOKENS tokens:
results, standings, lists) and on prose apart, and the one-document-a-line text tagged with
the corpus's own sentences (given to `tag --input jsonl` as token ranges), the most that
cutting the lines into sentences can give, and the same but for the cuts the corpus makes
inside a name (CUT_NAMES), the most for a splitter that reads the text; and these F1s again
against gold with those names joined.

    python benchmarks/raw_text.py -m model.pt conll2003/dev.txt     # develop rules here
    python benchmarks/raw_text.py -m model.pt conll2003/test.txt    # and confirm here
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


# A document whose sentences average fewer tokens than this is a table (CoNLL-2003 writes
# each row of results and standings as a sentence).
TABLE_TOKENS = 10


# Names that CoNLL-2003 dev and test cut over two of their sentences (`Jane` ends one,
# `Quigley` starts the next; checked by hand). In a document written on one line they read
# as one name, which no sentence splitter cuts apart, so the gold's two entities cost three
# errors (two missed, one wrong) however well the line is cut. Pairs that are two entities
# (`Netherlands` | `Czech Republic` in a list of ties) are not here.
CUT_NAMES = frozenset({
    # dev
    "Czech Republic", "Willie Wood", "Ken Green", "Berlin Grand Prix", "Frankie Fredericks",
    "George Panayiotopoulos", "Singer World Series", "Damien Flemming", "Ricky Ponting",
    "Steve Waugh", "asset-St. Louis", "Jane Quigley", "Svetlana Samokhvalova",
    "Rasa Mazeikyte", "Tattersalls Breeders Stakes",
    # test
    "English F.A. Challenge Cup", "Desvonde Botes", "Indra Wijaya", "National Hockey League",
    "National Basketball Association", "Football League", "Jocelyn Gourvennec",
    "Guillermo Amor", "Gheorghe Popescu", "Ivan de laPena", "Luis Enrique", "Albert Ferrer",
    "Garrett Hines", "Robert Winters", "Aston Villa", "Chris Sutton", "East Fife",
    "Mark Murless", "Schalk van der Merwe", "Dion Fourie", "Koo Jeon Woon"})


def with_cut_names_joined(lines: list[str], gold: list[set]) -> tuple[list[set], int]:
    """Each line's gold with the two entities of a name in CUT_NAMES joined into one (they
    touch, one space apart, with the same label); and how many were joined."""
    mended, joined = [], 0
    for line, spans in zip(lines, gold):
        ordered = sorted(spans)
        kept: list[tuple[int, int, str]] = []
        for span in ordered:
            if (kept and kept[-1][2] == span[2] and kept[-1][1] + 1 == span[0]
                    and line[kept[-1][0]:span[1]] in CUT_NAMES):
                kept[-1] = (kept[-1][0], span[1], span[2])
                joined += 1
            else:
                kept.append(span)
        mended.append(set(kept))
    return mended, joined


def documents(path: str) -> list[list[tuple[str, set, int]]]:
    """Each document's sentences as text, with their gold entities (start, end, label) in
    that text and their number of tokens."""
    found: dict[int, list[tuple[str, set, int]]] = {}
    for sentence in read_tagged(path).sentences:
        text, offsets = detokenized(sentence.tokens)
        spans = {(offsets[span.start][0], offsets[span.end - 1][1], span.type)
                 for span in schemes.spans(schemes.convert(sentence.tags, "iob2"))}
        found.setdefault(sentence.document, []).append((text, spans, len(sentence.tokens)))
    return list(found.values())


def is_table(sentences: list[tuple[str, set, int]]) -> bool:
    return sum(size for _, _, size in sentences) < TABLE_TOKENS * len(sentences)


def rebuilt(path: str, form: str) -> tuple[list[str], list[set[tuple[int, int, str]]]]:
    """The text's lines and each line's gold entities (start, end, label) in that form:
    ``sentences`` (one a line) or ``paragraphs`` (a document's sentences on one line);
    documents apart by a blank line."""
    lines, gold, _ = rebuilt_with_kinds(path, form)
    return lines, gold


def rebuilt_with_kinds(path: str, form: str) -> tuple[list[str], list[set], list[str]]:
    """:func:`rebuilt`, and for each line its document's kind: ``table``, ``prose``, or
    ``""`` for the blank lines between documents."""
    lines: list[str] = []
    gold: list[set] = []
    kinds: list[str] = []
    for sentences in documents(path):
        kind = "table" if is_table(sentences) else "prose"
        if lines:
            lines.append("")
            gold.append(set())
            kinds.append("")
        if form == "sentences":
            lines += [text for text, _, _ in sentences]
            gold += [spans for _, spans, _ in sentences]
            kinds += [kind] * len(sentences)
            continue
        line, spans_of_line = "", set()
        for text, spans, _ in sentences:
            shift = len(line) + 1 if line else 0
            line = f"{line} {text}" if line else text
            spans_of_line |= {(start + shift, end + shift, label) for start, end, label in spans}
        lines.append(line)
        gold.append(spans_of_line)
        kinds.append(kind)
    return lines, gold, kinds


def _cuts_a_name(before: tuple[str, set, int], after: tuple[str, set, int]) -> bool:
    """Whether the corpus's cut between two sentences falls inside a name of CUT_NAMES."""
    (first, first_spans, _), (second, second_spans, _) = before, after
    ending = [span for span in first_spans if span[1] == len(first)]
    starting = [span for span in second_spans if span[0] == 0]
    return bool(ending and starting and ending[0][2] == starting[0][2]
                and f"{first[ending[0][0]:]} {second[:starting[0][1]]}" in CUT_NAMES)


def gold_sentence_records(path: str, names_whole: bool = False) -> list[dict]:
    """One JSONL record per document, its sentences joined into one line as in the
    ``paragraphs`` form: the tokens of the default tokenizer, cut into the corpus's own
    sentences, for `nerlstm tag --input jsonl`; with ``names_whole``, not where the corpus
    cuts a name of CUT_NAMES (the best that a splitter reading the text can do)."""
    from nerlstm.tokenizer import tokenize

    records = []
    for number, sentences in enumerate(documents(path)):
        text, firsts = "", set()
        for index, (sentence, _, _) in enumerate(sentences):
            if not (names_whole and index and _cuts_a_name(sentences[index - 1], sentences[index])):
                firsts.add(len(text) + 1 if text else 0)
            text = f"{text} {sentence}" if text else sentence
        tokens = tokenize(text)
        starts = [index for index, (_, start, _) in enumerate(tokens) if start in firsts or
                  index == 0]
        records.append({"text": text, "document": number,
                        "tokens": [{"start": start, "end": end} for _, start, end in tokens],
                        "sentences": [list(pair) for pair in
                                      zip(starts, starts[1:] + [len(tokens)])]})
    return records


def micro_f1(gold: list[set], found: list[set]) -> float:
    correct = sum(len(g & f) for g, f in zip(gold, found))
    predicted, expected = sum(map(len, found)), sum(map(len, gold))
    precision = correct / predicted if predicted else 0.0
    recall = correct / expected if expected else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def tagged_entities(model: str, lines: list[str], extra: list[str]) -> list[set]:
    """The entities (start, end, label) that `nerlstm tag -f jsonl` finds in each line."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as text:
        text.write("\n".join(lines) + "\n")
        text.flush()
        done = subprocess.run([sys.executable, "-m", "nerlstm", "tag", "-m", model, "-f",
                               "jsonl", text.name, *extra], capture_output=True, check=True)
    records = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    if len(records) != len(lines):
        raise SystemExit(f"error: {len(records)} output lines for {len(lines)} input lines")
    return [{(e["start"], e["end"], e["label"]) for e in record["entities"]}
            for record in records]


def f1_by_kind(gold: list[set], found: list[set], kinds: list[str]) -> dict[str, float]:
    """Micro F1 over all lines, and over the lines of tables and of prose apart."""
    scores = {"": micro_f1(gold, found)}
    for kind in ("table", "prose"):
        chosen = [index for index, of in enumerate(kinds) if of == kind]
        scores[kind] = micro_f1([gold[i] for i in chosen], [found[i] for i in chosen])
    return scores



def eval_f1(model: str, path: str, extra: list[str]) -> float:
    done = subprocess.run([sys.executable, "-m", "nerlstm", "eval", path, "-m", model,
                           "--json", *extra], capture_output=True, check=True)
    return json.loads(done.stdout)["f1"]


def measure(model: str, path: str) -> dict:
    """Every figure of the comparison, as fractions; ``_tables`` and ``_prose`` keys hold
    the F1 over those documents alone."""
    results = {"eval_documents_f1": eval_f1(model, path, []),
               "eval_sentences_alone_f1": eval_f1(model, path, ["--sentences-alone"])}
    for form in ("sentences", "paragraphs"):
        lines, gold, kinds = rebuilt_with_kinds(path, form)
        for name, extra in (("documents", []), ("lines", ["--lines"])):
            found = tagged_entities(model, lines, extra)
            scores = f1_by_kind(gold, found, kinds)
            key = f"raw_{form}_{name}_f1"
            results[key] = scores[""]
            results[f"{key}_tables"], results[f"{key}_prose"] = scores["table"], scores["prose"]
            if form == "paragraphs" and name == "documents":
                mended, joined = with_cut_names_joined(lines, gold)
                results["raw_paragraphs_documents_f1_cut_names_joined"] = micro_f1(mended, found)
                results["cut_names_joined"] = joined
    lines, gold, kinds = rebuilt_with_kinds(path, "paragraphs")
    for names_whole, key in ((False, "raw_paragraphs_gold_sentences_f1"),
                             (True, "raw_paragraphs_gold_sentences_names_whole_f1")):
        records = gold_sentence_records(path, names_whole)
        found = iter(tagged_entities(model, [json.dumps(record) for record in records],
                                     ["--input", "jsonl"]))
        found_by_line = [next(found) if line else set() for line in lines]
        scores = f1_by_kind(gold, found_by_line, kinds)
        results[key] = scores[""]
        results[f"{key}_tables"], results[f"{key}_prose"] = scores["table"], scores["prose"]
        if names_whole:
            mended, _ = with_cut_names_joined(lines, gold)
            results[f"{key}_cut_names_joined"] = micro_f1(mended, found_by_line)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="a tagged CoNLL file (its documents by -DOCSTART-)")
    parser.add_argument("-m", "--model", required=True)
    args = parser.parse_args()
    results = measure(args.model, args.data)

    def scores(key: str) -> str:
        return (f"{results[key] * 100:.2f} (tables {results[key + '_tables'] * 100:.2f}, "
                f"prose {results[key + '_prose'] * 100:.2f})")

    print(f"eval by documents {results['eval_documents_f1'] * 100:.2f}, sentences alone "
          f"{results['eval_sentences_alone_f1'] * 100:.2f}")
    for form, what in (("sentences", "one sentence a line"),
                       ("paragraphs", "one document a line")):
        print(f"raw text, {what}: by documents {scores(f'raw_{form}_documents_f1')}, "
              f"--lines {scores(f'raw_{form}_lines_f1')}")
    print(f"raw text, one document a line, cut into the corpus's sentences: "
          f"{scores('raw_paragraphs_gold_sentences_f1')}")
    print(f"raw text, one document a line, the corpus's sentences but no cut inside a name: "
          f"{scores('raw_paragraphs_gold_sentences_names_whole_f1')}")
    joined = "raw_paragraphs_documents_f1_cut_names_joined"
    print(f"against gold with the {results['cut_names_joined']} names the corpus cuts over "
          f"two sentences joined: one document a line {results[joined] * 100:.2f}, the "
          f"corpus's sentences but no cut inside a name "
          f"{results['raw_paragraphs_gold_sentences_names_whole_f1_cut_names_joined'] * 100:.2f}")


if __name__ == "__main__":
    main()
