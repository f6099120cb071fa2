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
