"""Training objectives and regularisers beside the tagging loss: the language-modelling
objective, weights averaged over epochs, word dropout, character dropout, the learning-rate
schedule."""

import math
import random
from dataclasses import replace

import pytest
import torch
from conftest import DATA, run_cli
from test_training import CONFIG, SignalAfter, weights

from nerlstm.conll import read_tagged
from nerlstm.language_model import BOUNDARY, OTHER, NeighbourWordObjective, word_classes
from nerlstm.model import CharCnn, CharEncoder
from nerlstm.modelfile import load_model
from nerlstm.training import (
    TrainingData,
    batch_learning_rate,
    build_tagger,
    checkpoint_path,
    epoch_learning_rate,
    rare_word_mask,
    resume_from,
    train,
)
from nerlstm.vocab import build_vocabs, normalise_digits


@pytest.fixture(scope="module")
def data():
    return [read_tagged(str(DATA / name)).sentences for name in ("train.txt", "dev.txt")]


def test_word_classes_keep_the_most_frequent_words_and_pool_the_rest():
    words, _, counts = build_vocabs([["the", "cat", "the", "dog", "the", "cat", "emu"]])
    classes = word_classes(words, counts, predicted=2)
    assert classes[0] == BOUNDARY  # padding follows a sentence's last word
    assert classes[words.get("the")] == 2 and classes[words.get("cat")] == 3
    assert classes[words.get("dog")] == OTHER and classes[words.get("emu")] == OTHER
    assert classes[words.get("never seen")] == OTHER  # UNK


def test_neighbour_word_loss_equals_the_plain_sum_over_tokens():
    torch.manual_seed(0)
    classes_of_words = torch.tensor([BOUNDARY, OTHER, 2, 3, 4, OTHER])
    objective = NeighbourWordObjective(3, classes_of_words)
    word_ids = torch.tensor([[2, 3, 5, 4], [4, 2, 0, 0]])
    mask = word_ids > 0
    states = torch.randn(2, 4, 6)
    expected = torch.tensor(0.0)
    for row in range(2):
        length = int(mask[row].sum())
        sentence = [int(classes_of_words[w]) for w in word_ids[row, :length]]
        for position in range(length):
            following = sentence[position + 1] if position + 1 < length else BOUNDARY
            preceding = sentence[position - 1] if position > 0 else BOUNDARY
            forward = objective.forward_output(torch.tanh(
                objective.forward_bottleneck(states[row, position, :3])))
            backward = objective.backward_output(torch.tanh(
                objective.backward_bottleneck(states[row, position, 3:])))
            expected = expected - forward.log_softmax(0)[following] \
                - backward.log_softmax(0)[preceding]
    assert torch.allclose(objective(states, word_ids, mask), expected, atol=1e-5)


def test_loss_and_states_gives_the_loss_to_the_same_numbers(data):
    train_sentences, _ = data
    tagger = build_tagger(train_sentences, CONFIG, "cpu")
    model = tagger.model.train()
    batch = tagger.encoder.batch([s.tokens for s in train_sentences], list(range(8)),
                                 [s.tags for s in train_sentences],
                                 {index: 0 for index in range(8)})
    torch.manual_seed(3)
    plain = model.loss(batch)
    torch.manual_seed(3)
    loss, states = model.loss_and_states(batch)
    assert torch.equal(plain, loss)
    assert states.shape == (8, batch.word_ids.shape[1], 2 * CONFIG.hidden)


def test_a_language_model_run_trains_its_head_and_leaves_it_out_of_the_model(data, tmp_path):
    torch.set_num_threads(1)
    train_sentences, dev_sentences = data
    plain_path, lm_path = tmp_path / "plain.pt", tmp_path / "lm.pt"
    config = replace(CONFIG, epochs=1)
    plain = train(train_sentences, dev_sentences, config, model_path=str(plain_path))
    with_lm = train(train_sentences, dev_sentences, replace(config, lm_weight=0.5),
                    model_path=str(lm_path))
    # the language model's loss comes on top of the tagging loss
    assert with_lm.rows[0]["loss"] > plain.rows[0]["loss"] + 1.0
    assert weights(lm_path).keys() == weights(plain_path).keys()
    assert any(not torch.equal(weights(lm_path)[name], weights(plain_path)[name])
               for name in weights(plain_path))
    tagger, _ = load_model(str(lm_path))
    assert len(tagger.predict([["Peter", "visited", "Paris"]])[0]) == 3


def test_word_dropout_replaces_words_by_unk_and_keeps_them_as_read(data):
    train_sentences, _ = data
    config = replace(CONFIG, doc_context=False, word_unk_prob=0.0, word_dropout=0.3)
    tagger = build_tagger(train_sentences, config, "cpu")
    training_data = TrainingData(train_sentences, tagger.encoder, config, "cpu")
    torch.manual_seed(0)
    batch = training_data.batch(list(range(len(train_sentences))), random.Random(0))
    read = batch.words_as_read
    assert read is not None and bool((read[batch.mask] > 1).all())
    dropped = (batch.word_ids == 1) & batch.mask
    share = float(dropped.sum()) / float(batch.mask.sum())
    assert 0.25 < share < 0.35
    assert torch.equal(batch.word_ids[~dropped], read[~dropped])
    assert not bool(dropped[~batch.mask].any())  # padding stays padding


def test_epoch_average_saves_the_mean_of_the_weights_at_epoch_ends(data, tmp_path):
    """Without dev data a model is saved after every epoch: the averaged run's last one is the
    mean of the plain run's weights after epochs 2 and 3 (averaging does not change the
    training itself)."""
    torch.set_num_threads(1)
    train_sentences, _ = data
    after = {}
    for epochs in (2, 3):
        path = tmp_path / f"plain{epochs}.pt"
        train(train_sentences, None, replace(CONFIG, epochs=epochs), model_path=str(path))
        after[epochs] = weights(path)
    averaged_path = tmp_path / "averaged.pt"
    train(train_sentences, None, replace(CONFIG, epochs=3, average_from=2),
          model_path=str(averaged_path))
    averaged = weights(averaged_path)
    for name, tensor in averaged.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, (after[2][name] + after[3][name]) / 2, atol=1e-6), name
    assert any(not torch.allclose(averaged[name], after[3][name], atol=1e-4)
               for name in averaged if averaged[name].is_floating_point())


def test_epoch_average_logs_the_unaveraged_dev_score(data, tmp_path):
    torch.set_num_threads(1)
    train_sentences, dev_sentences = data
    result = train(train_sentences, dev_sentences, replace(CONFIG, epochs=2, average_from=2),
                   model_path=str(tmp_path / "m.pt"))
    assert "dev_unaveraged_f1" not in result.rows[0]
    assert 0.0 <= result.rows[1]["dev_unaveraged_f1"] <= 1.0


@pytest.mark.parametrize("options", [{"average_from": 2}, {"lm_weight": 0.2, "word_dropout": 0.1}])
def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(data, tmp_path, sigint_raises,
                                                                 options):
    torch.set_num_threads(1)
    train_sentences, _ = data
    config = replace(CONFIG, epochs=2, **options)
    straight = tmp_path / "straight.pt"
    train(train_sentences, None, config, model_path=str(straight))
    stopped = tmp_path / "stopped.pt"
    result = train(train_sentences, None, config, model_path=str(stopped),
                   listener=SignalAfter(5, in_epoch=2))
    assert result.stopped_by_signal is not None
    checkpoint = resume_from(checkpoint_path(str(stopped)))
    if config.lm_weight:
        assert checkpoint["language_model"] is not None
    train(train_sentences, None, config, model_path=str(stopped), resume=checkpoint)
    first, second = weights(straight), weights(stopped)
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_two_kinds_of_averaging_are_refused_as_a_usage_error(tmp_path):
    result = run_cli("train", DATA / "train.txt", "-m", tmp_path / "m.pt", "--average-decay",
                     "0.99", "--average-from", "3")
    assert result.exit_code == 2
    assert "average_decay and average_from" in result.output


def test_a_model_file_from_before_these_settings_loads_with_them_off(data, tmp_path):
    path = tmp_path / "old.pt"
    train(data[0], None, replace(CONFIG, epochs=1), model_path=str(path))
    payload = torch.load(path, weights_only=True)
    for name in ("average_from", "lm_weight", "word_dropout", "char_dropout", "lr_schedule",
                 "unk_max_count", "char_projection"):
        del payload["config"][name]
    torch.save(payload, path)
    tagger, _ = load_model(str(path))
    config = tagger.model.config
    assert (config.average_from, config.lm_weight, config.word_dropout) == (0, 0.0, 0.0)
    assert (config.char_dropout, config.lr_schedule, config.unk_max_count) == (0.0, "inverse", 1)
    assert config.char_projection == 0 and tagger.model.char_projection is None
    recipe = run_cli("info", "-m", path, "--recipe")
    assert recipe.exit_code == 0 and "average_from = 0" in recipe.output


def test_mention_replacement_draws_mentions_of_the_same_type_alike_within_a_document(data):
    from nerlstm import schemes

    config = replace(CONFIG, mention_replacement=1.0, context_dropout=0.0)
    tagger = build_tagger(data[0], config, "cpu")
    training = TrainingData(data[0], tagger.encoder, config, "cpu")
    known = {kind: set(mentions) for kind, mentions in training.mentions.items()}
    indices = list(range(len(data[0])))
    tokens, tags = training.replaced_mentions(indices, training.contexts, random.Random(3))
    replaced = 0
    for index in indices:
        before = schemes.spans(training.tags[index])
        after = schemes.spans(tags[index])
        assert [span.type for span in after] == [span.type for span in before]
        assert set(tags[index]) <= set(tagger.encoder.tags.index)  # the training scheme
        # Outside the mentions, the sentence is as it was.
        outside = [token for position, token in enumerate(tokens[index])
                   if tags[index][position] == "O"]
        assert outside == [token for position, token in enumerate(training.tokens[index])
                           if training.tags[index][position] == "O"]
        for old, new in zip(before, after):
            mention = tuple(tokens[index][new.start:new.end])
            assert mention in known[new.type]
            replaced += mention != tuple(training.tokens[index][old.start:old.end])
    assert replaced > 0.5 * sum(len(spans) for spans in training.entities)
    # A name repeated in its document is replaced the same way each time.
    by_name: dict = {}
    for index in indices:
        for old, new in zip(schemes.spans(training.tags[index]), schemes.spans(tags[index])):
            key = (training.contexts[index], old.type,
                   tuple(training.tokens[index][old.start:old.end]))
            by_name.setdefault(key, []).append(tuple(tokens[index][new.start:new.end]))
    assert sum(len(names) > 1 for names in by_name.values()) >= 10
    assert all(len(set(names)) == 1 for names in by_name.values())
    # Off, a batch is built from the sentences as they are, and no random draw is spent.
    plain = replace(config, mention_replacement=0.0, word_unk_prob=0.0)
    rng = random.Random(3)
    batch = TrainingData(data[0], tagger.encoder, plain, "cpu").batch(indices[:20], rng)
    assert rng.random() == random.Random(3).random()
    expected = tagger.encoder.batch(training.tokens, indices[:20], training.tags,
                                    training.contexts)
    assert torch.equal(batch.word_ids, expected.word_ids)
    assert torch.equal(batch.tag_ids, expected.tag_ids)


def test_learning_rate_schedules_against_their_formulas():
    inverse = replace(CONFIG, lr=0.02, lr_decay=0.05, epochs=50)
    assert [epoch_learning_rate(inverse, epoch) for epoch in (1, 2, 21)] == pytest.approx(
        [0.02, 0.02 / 1.05, 0.02 / 2.0])
    cosine = replace(inverse, lr_schedule="cosine")
    assert epoch_learning_rate(cosine, 1) == pytest.approx(0.02)
    assert epoch_learning_rate(cosine, 26) == pytest.approx(0.01)
    assert epoch_learning_rate(cosine, 50) == pytest.approx(0.01 * (1 + math.cos(math.pi * 49 / 50)))
    rates = [epoch_learning_rate(cosine, epoch) for epoch in range(1, 51)]
    assert all(later < earlier for earlier, later in zip(rates, rates[1:]))
    assert rates[-1] > 0  # the last epoch still learns


def test_the_cyclic_schedule_falls_within_each_epoch_around_the_inverse_rate():
    cyclic = replace(CONFIG, lr=0.02, lr_decay=0.05, epochs=50, lr_schedule="cyclic")
    for epoch in (1, 30):
        mean_rate = epoch_learning_rate(cyclic, epoch)
        assert mean_rate == pytest.approx(0.02 / (1 + 0.05 * (epoch - 1)))
        rates = [batch_learning_rate(cyclic, epoch, batch, 1000) for batch in range(1000)]
        assert all(later < earlier for earlier, later in zip(rates, rates[1:]))
        assert rates[0] == pytest.approx(1.9 * mean_rate, rel=1e-2)
        assert rates[-1] == pytest.approx(0.1 * mean_rate)
        assert sum(rates) / len(rates) == pytest.approx(mean_rate, rel=1e-2)
    inverse = replace(cyclic, lr_schedule="inverse")
    assert batch_learning_rate(inverse, 3, 0, 10) == epoch_learning_rate(inverse, 3)


def test_a_cyclic_run_ends_each_epoch_at_a_tenth_of_its_rate(data, tmp_path):
    torch.set_num_threads(1)
    config = replace(CONFIG, epochs=2, lr_schedule="cyclic")
    result = train(data[0], None, config, model_path=str(tmp_path / "m.pt"))
    assert [row["lr"] for row in result.rows] == pytest.approx(
        [0.1 * config.lr, 0.1 * epoch_learning_rate(config, 2)])


def test_a_cosine_run_trains_at_the_scheduled_rate(data, tmp_path):
    torch.set_num_threads(1)
    config = replace(CONFIG, epochs=2, lr_schedule="cosine")
    result = train(data[0], None, config, model_path=str(tmp_path / "m.pt"))
    assert [row["lr"] for row in result.rows] == pytest.approx(
        [config.lr, epoch_learning_rate(config, 2)])


@pytest.mark.parametrize("encoder", [CharCnn(40, 8, 12, embedding_dropout=0.5),
                                     CharEncoder(40, 8, 6, embedding_dropout=0.5)])
def test_character_dropout_acts_in_training_only(encoder):
    torch.manual_seed(0)
    char_ids = torch.randint(1, 40, (20, 7))
    lengths = torch.full((20,), 7)
    encoder.eval()
    plain = encoder(char_ids, lengths)
    encoder.embedding_dropout = 0.0
    assert torch.equal(encoder(char_ids, lengths), plain)  # no dropout outside training
    encoder.train()
    assert torch.allclose(encoder(char_ids, lengths), plain)  # rate 0: the plain features
    encoder.embedding_dropout = 0.5
    assert not torch.allclose(encoder(char_ids, lengths), plain, atol=1e-3)


def test_character_dropout_comes_from_the_config(data):
    tagger = build_tagger(data[0], replace(CONFIG, char_dropout=0.3), "cpu")
    assert tagger.model.char_encoder.embedding_dropout == 0.3
    plain = build_tagger(data[0], CONFIG, "cpu")
    assert plain.model.char_encoder.embedding_dropout == 0.0


def test_rare_words_are_those_seen_at_most_the_given_count():
    words, _, counts = build_vocabs([["the", "cat", "the", "dog", "the", "cat", "emu"]])
    singletons = rare_word_mask(counts, words)
    assert [bool(singletons[words.get(w)]) for w in ("the", "cat", "dog", "emu")] == [
        False, False, True, True]
    up_to_two = rare_word_mask(counts, words, max_count=2)
    assert [bool(up_to_two[words.get(w)]) for w in ("the", "cat", "dog", "emu")] == [
        False, True, True, True]
    assert not bool(up_to_two[0]) and not bool(up_to_two[words.get("never seen")])


def test_training_replaces_the_rare_words_of_the_config(data):
    train_sentences, _ = data
    config = replace(CONFIG, doc_context=False, word_unk_prob=1.0, unk_max_count=2)
    tagger = build_tagger(train_sentences, config, "cpu")
    training_data = TrainingData(train_sentences, tagger.encoder, config, "cpu")
    batch = training_data.batch(list(range(len(train_sentences))), random.Random(0))
    counts = training_data.word_counts
    for row, sentence in enumerate(train_sentences):
        for position, token in enumerate(sentence.tokens):
            replaced = int(batch.word_ids[row, position]) == 1
            assert replaced == (counts[normalise_digits(token)] <= 2), token
