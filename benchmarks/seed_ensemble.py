"""How much the seeds' spread costs: several models of one recipe, their scores averaged.

`python benchmarks/seed_ensemble.py test.txt seed1.pt seed2.pt ...` reads the data with its
documents, as `nerlstm eval` does, averages the models' tag scores (emissions) and CRF
transitions, decodes the mean with the constrained Viterbi, and prints the entity F1 of each
model alone (the same as `nerlstm eval`), of every pair and of all together. An ensemble tags
as many times slower as it has models; this measures what a single model leaves to its seed,
it is not a way to tag.
"""

from __future__ import annotations

import argparse
import itertools

import torch

from nerlstm import schemes
from nerlstm.batching import context_ids
from nerlstm.conll import read_tagged
from nerlstm.crf import CrfScores, viterbi
from nerlstm.evaluation import micro_scores
from nerlstm.modelfile import load_model


def model_scores(path: str, tokens: list[list[str]], contexts: list[int]
                 ) -> tuple[list[str], CrfScores, dict[int, torch.Tensor]]:
    """The model's tag symbols, CRF scores and the emissions of each nonempty sentence."""
    tagger, _ = load_model(path)
    tagger.model.eval()
    nonempty = [index for index, sentence in enumerate(tokens) if sentence]
    emissions_of: dict[int, torch.Tensor] = {}
    with torch.inference_mode():
        crf_scores = tagger.model.crf.scores()
        # The tagger's own document path: the same emissions `nerlstm eval` decodes.
        for indices, emissions, _ in tagger._document_emissions(tokens, nonempty, contexts, 256):
            for row, index in enumerate(indices):
                emissions_of[index] = emissions[row, :len(tokens[index])].clone()
    return list(tagger.encoder.tags.symbols), crf_scores, emissions_of


def ensemble_f1(members: list[tuple[list[str], CrfScores, dict[int, torch.Tensor]]],
                gold: list[list[str]]) -> float:
    symbols = members[0][0]
    mean_scores = CrfScores(*(torch.stack([member[1][part] for member in members]).mean(0)
                              for part in range(3)))
    predicted: list[list[str]] = [[] for _ in gold]
    for index in members[0][2]:
        emissions = torch.stack([member[2][index] for member in members]).mean(0)[None]
        mask = torch.ones(emissions.shape[:2], dtype=torch.bool)
        path = viterbi(emissions, mask, mean_scores)[0].tolist()
        found = schemes.spans([symbols[tag] for tag in path])
        predicted[index] = schemes.tags_from_spans(found, len(path), "iob2")
    return 100 * micro_scores(gold, predicted)["f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="a CoNLL file with its documents")
    parser.add_argument("models", nargs="+", help="model files of one recipe, same tags")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sentences = read_tagged(args.data).sentences
    tokens = [sentence.tokens for sentence in sentences]
    contexts = context_ids([sentence.document for sentence in sentences])
    gold = [sentence.tags for sentence in sentences]
    members = [model_scores(path, tokens, contexts) for path in args.models]
    if any(member[0] != members[0][0] for member in members):
        parser.error("the models tag different tag sets")
    for path, member in zip(args.models, members):
        print(f"{path}: {ensemble_f1([member], gold):.2f}")
    if len(members) > 2:
        for first, second in itertools.combinations(range(len(members)), 2):
            print(f"{args.models[first]} + {args.models[second]}: "
                  f"{ensemble_f1([members[first], members[second]], gold):.2f}")
    print(f"all {len(members)}: {ensemble_f1(members, gold):.2f}")


if __name__ == "__main__":
    main()
