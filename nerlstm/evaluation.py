"""Entity-level scores, computed as conlleval computes them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from nerlstm import schemes


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def micro_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
                 ) -> dict[str, float]:
    """Micro precision, recall and F1 over entities; fast, for scoring dev during training.

    Gives the same figures as seqeval's default mode (tested), without its slow import.
    """
    correct = found = expected = 0
    for gold_tags, predicted_tags in zip(gold, predicted):
        gold_spans = set(schemes.spans(gold_tags))
        predicted_spans = set(schemes.spans(predicted_tags))
        correct += len(gold_spans & predicted_spans)
        found += len(predicted_spans)
        expected += len(gold_spans)
    precision, recall = _ratio(correct, found), _ratio(correct, expected)
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}


def report(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], *,
           strict: bool = False) -> dict:
    """Per-type and averaged scores, by seqeval (default mode, or strict IOB2 mode).

    Returns:
        ``{"precision", "recall", "f1", "macro": {...}, "per_type": {TYPE: {"precision",
        "recall", "f1", "support"}}, "sentences", "tokens"}``, scores as fractions.
    """
    import warnings

    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    options = {"mode": "strict", "scheme": IOB2} if strict else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on types with no prediction
        table = classification_report([list(tags) for tags in gold],
                                      [list(tags) for tags in predicted],
                                      output_dict=True, zero_division=0, **options)
    averages = {"micro avg", "macro avg", "weighted avg"}
    per_type = {kind: {"precision": float(row["precision"]), "recall": float(row["recall"]),
                       "f1": float(row["f1-score"]), "support": int(row["support"])}
                for kind, row in sorted(table.items()) if kind not in averages}
    micro = table.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    macro = table.get("macro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    return {
        "precision": float(micro["precision"]), "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "macro": {"precision": float(macro["precision"]), "recall": float(macro["recall"]),
                  "f1": float(macro["f1-score"])},
        "per_type": per_type,
        "sentences": len(gold),
        "tokens": sum(len(tags) for tags in gold),
    }


def evaluate(tagger, sentences, *, strict: bool = False, batch_size: int = 256,
             alone: bool = False) -> tuple[dict, list[list[str]]]:
    """Tag the sentences with ``tagger`` and score against their tags; returns (report, tags).

    Sentences are read with their documents, or with ``alone`` each by itself, as `tag`
    reads a line of text.
    """
    from nerlstm.batching import context_ids  # torch is loaded by now: the tagger needs it

    contexts = None if alone else context_ids([sentence.document for sentence in sentences])
    predicted = tagger.predict([sentence.tokens for sentence in sentences], batch_size,
                               contexts=contexts)
    gold = [sentence.tags for sentence in sentences]
    if strict:  # strict mode wants well-formed IOB2 gold; entities are unchanged
        gold = [schemes.convert(tags, "iob2") for tags in gold]
    return report(gold, predicted, strict=strict), predicted


def write_predictions(path: str, sentences, predicted: Sequence[Sequence[str]]) -> None:
    """Token, gold tag and predicted tag per line, a blank line after each sentence (``-``:
    stdout). A file is written whole or not at all."""
    from nerlstm.textio import output_file

    with output_file(path) as out:
        for sentence, tags in zip(sentences, predicted):
            for token, gold, guess in zip(sentence.tokens, sentence.tags, tags):
                out.write(f"{token} {gold} {guess}\n")
            out.write("\n")


def unseen_types(sentences, tag_symbols: Sequence[str]) -> list[str]:
    """Entity types in the sentences' tags that none of ``tag_symbols`` has."""
    def entity_type(tag: str) -> str:
        return tag.split("-", 1)[-1]

    return sorted({entity_type(tag) for s in sentences for tag in s.tags if tag != "O"} -
                  {entity_type(tag) for tag in tag_symbols})


NONE = "none"


def error_analysis(token_lists: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
                   predicted: Sequence[Sequence[str]], *, seen: set[str] | None = None,
                   top: int = 10) -> dict:
    """Where the errors are.

    Every gold entity not found exactly is one error of a kind: ``wrong_type`` (the span was
    found with another type), ``wrong_boundary`` (an overlapping span of the right type),
    ``wrong_type_and_boundary`` (an overlapping span of another type) or ``missed`` (nothing
    overlaps); every predicted entity overlapping no gold entity is ``spurious``.

    Args:
        token_lists, gold, predicted: tokens and tags per sentence.
        seen: entity texts (tokens joined by spaces) seen in the training data; with it, the
            scores of entities seen versus unseen there.
        top: how many of the most frequent wrong spans to list.

    Returns:
        ``{"kinds": {kind: count}, "confusion": {gold type: {predicted type: count}},
        "frequent": [{"text", "gold", "predicted", "kind", "count"}], "token_accuracy",
        "seen": {...}, "unseen": {...}}`` (the last two only with ``seen``).
    """
    kinds: Counter = Counter()
    confusion: dict[str, Counter] = {}
    wrong: Counter = Counter()
    matched_tokens = all_tokens = 0
    groups = {"seen": Counter(), "unseen": Counter()}
    for tokens, gold_tags, predicted_tags in zip(token_lists, gold, predicted):
        gold_iob2 = schemes.convert(gold_tags, "iob2")
        matched_tokens += sum(g == p for g, p in zip(gold_iob2, predicted_tags))
        all_tokens += len(tokens)
        gold_spans, predicted_spans = schemes.spans(gold_tags), schemes.spans(predicted_tags)
        exact = set(gold_spans) & set(predicted_spans)

        def text(span: schemes.Span, tokens: Sequence[str] = tokens) -> str:
            return " ".join(tokens[span.start:span.end])

        for span in gold_spans:
            overlapping = [p for p in predicted_spans
                           if p.start < span.end and span.start < p.end]
            best = max(overlapping, key=lambda p: (p.start == span.start and p.end == span.end,
                                                   p.type == span.type,
                                                   min(p.end, span.end) - max(p.start, span.start)),
                       default=None)
            found = best.type if best else NONE
            confusion.setdefault(span.type, Counter())[found] += 1
            if span in exact:
                kind = None
            elif best is None:
                kind = "missed"
            elif (best.start, best.end) == (span.start, span.end):
                kind = "wrong_type"
            elif best.type == span.type:
                kind = "wrong_boundary"
            else:
                kind = "wrong_type_and_boundary"
            if kind:
                kinds[kind] += 1
                wrong[(text(span), span.type, found, kind)] += 1
            if seen is not None:
                group = groups["seen" if text(span) in seen else "unseen"]
                group["gold"] += 1
                group["correct"] += span in exact
        for span in predicted_spans:
            if seen is not None:
                groups["seen" if text(span) in seen else "unseen"]["predicted"] += 1
            if not any(g.start < span.end and span.start < g.end for g in gold_spans):
                kinds["spurious"] += 1
                confusion.setdefault(NONE, Counter())[span.type] += 1
                wrong[(text(span), NONE, span.type, "spurious")] += 1
    result = {
        "kinds": {kind: kinds[kind] for kind in ("wrong_type", "wrong_boundary",
                                                 "wrong_type_and_boundary", "missed", "spurious")},
        "confusion": {row: dict(sorted(counts.items())) for row, counts in sorted(confusion.items())},
        "frequent": [{"text": t, "gold": g, "predicted": p, "kind": k, "count": n}
                     for (t, g, p, k), n in sorted(wrong.items(), key=lambda item: (-item[1], item[0]))[:top]],
        "token_accuracy": _ratio(matched_tokens, all_tokens),
    }
    if seen is not None:
        for name, counts in groups.items():
            precision = _ratio(counts["correct"], counts["predicted"])
            recall = _ratio(counts["correct"], counts["gold"])
            result[name] = {"entities": counts["gold"], "precision": precision, "recall": recall,
                            "f1": _f1(precision, recall)}
    return result


def entity_texts(sentences) -> set[str]:
    """The texts of every entity in tagged sentences."""
    return {" ".join(s.tokens[span.start:span.end]) for s in sentences for span in schemes.spans(s.tags)}
