import random

from seqeval.metrics import f1_score, precision_score, recall_score

from nerlstm import schemes
from nerlstm.evaluation import micro_scores, report

TAGS = schemes.tag_set(["LOC", "MISC", "PER"], "iob2") + ["I-ORG", "B-ORG"]


def random_corpus(rng, sentences=60):
    return [[rng.choice(TAGS) for _ in range(rng.randint(1, 8))] for _ in range(sentences)]


def test_micro_scores_equal_seqeval():
    rng = random.Random(1)
    for _ in range(20):
        gold, predicted = random_corpus(rng), None
        predicted = [[rng.choice(TAGS) if rng.random() < 0.3 else tag for tag in tags]
                     for tags in gold]
        ours = micro_scores(gold, predicted)
        assert abs(ours["f1"] - f1_score(gold, predicted)) < 1e-12
        assert abs(ours["precision"] - precision_score(gold, predicted)) < 1e-12
        assert abs(ours["recall"] - recall_score(gold, predicted)) < 1e-12


def test_report_per_type_and_averages():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    scores = report(gold, predicted)
    assert scores["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert scores["per_type"]["LOC"]["recall"] == 0.0 and scores["per_type"]["LOC"]["support"] == 1
    assert scores["per_type"]["ORG"]["precision"] == 0.5
    assert abs(scores["f1"] - 2 / 3) < 1e-9
    assert scores["sentences"] == 2 and scores["tokens"] == 6
    assert abs(scores["macro"]["f1"] - (1 + 0 + 2 / 3) / 3) < 1e-9


def test_strict_mode_refuses_ill_formed_predictions():
    gold = [["B-PER", "I-PER"]]
    predicted = [["I-PER", "I-PER"]]
    assert report(gold, predicted)["f1"] == 1.0
    assert report(gold, predicted, strict=True)["f1"] == 0.0


def test_error_analysis_on_hand_made_pairs():
    from nerlstm.evaluation import error_analysis

    tokens = [["Ann", "Lee", "met", "Bob", "in", "New", "York", "for", "IBM", "talks"]]
    gold = [["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "I-LOC", "O", "B-ORG", "O"]]
    predicted = [["B-PER", "O", "O", "B-ORG", "O", "B-LOC", "I-LOC", "O", "O", "B-MISC"]]
    analysis = error_analysis(tokens, gold, predicted, seen={"New York", "Bob"})
    assert analysis["kinds"] == {"wrong_type": 1, "wrong_boundary": 1,
                                 "wrong_type_and_boundary": 0, "missed": 1, "spurious": 1}
    assert analysis["confusion"] == {"LOC": {"LOC": 1}, "ORG": {"none": 1},
                                     "PER": {"ORG": 1, "PER": 1}, "none": {"MISC": 1}}
    assert analysis["token_accuracy"] == 0.6
    kinds = {(item["text"], item["kind"]) for item in analysis["frequent"]}
    assert kinds == {("Ann Lee", "wrong_boundary"), ("Bob", "wrong_type"), ("IBM", "missed"),
                     ("talks", "spurious")}
    assert analysis["seen"] == {"entities": 2, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert analysis["unseen"]["entities"] == 2 and analysis["unseen"]["recall"] == 0.0
    shifted = error_analysis([["a", "b", "c"]], [["B-PER", "I-PER", "O"]], [["O", "B-LOC", "I-LOC"]])
    assert shifted["kinds"]["wrong_type_and_boundary"] == 1 and "seen" not in shifted
