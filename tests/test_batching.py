import random

import pytest
import torch
from conftest import SENTENCES

from nerlstm.batching import (
    MAX_CONTEXT_SENTENCES,
    batch_indices,
    context_batches,
    context_ids,
    padded_rows,
)
from nerlstm.config import Config
from nerlstm.training import build_tagger


def test_batches_group_similar_lengths_and_cover_every_sentence():
    lengths = [5, 1, 9, 2, 5, 1, 9, 2]
    groups = list(batch_indices(lengths, 2, random.Random(0)))
    assert sorted(i for g in groups for i in g) == list(range(8))
    assert all(len({lengths[i] for i in group}) == 1 for group in groups)
    assert list(batch_indices(lengths, 3)) == [[1, 5, 3], [7, 0, 4], [2, 6]]


def test_padded_rows_equal_padding_each_row_by_hand():
    rng = random.Random(3)
    rows = [[rng.randrange(1, 90) for _ in range(rng.randint(1, 12))] for _ in range(200)]
    longest = max(len(row) for row in rows)
    plain = torch.tensor([row + [0] * (longest - len(row)) for row in rows])
    got = padded_rows(rows, torch.tensor([len(row) for row in rows]))
    assert torch.equal(got, plain) and got.dtype == torch.long
    assert torch.equal(padded_rows([[7]], torch.tensor([1])), torch.tensor([[7]]))


def test_each_tokens_character_row_is_its_own_characters():
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8), "cpu")
    tokens = [s.tokens for s in SENTENCES]
    batch = tagger.encoder.batch(tokens, list(range(len(SENTENCES))))
    for row, sentence in enumerate(tokens):
        for column, token in enumerate(sentence):
            distinct = batch.word_to_distinct[row, column]
            wanted = tagger.encoder.char_ids(token)
            assert batch.char_lengths[distinct] == len(wanted)
            assert batch.char_ids[distinct, :len(wanted)].tolist() == wanted
            assert not batch.char_ids[distinct, len(wanted):].any()


def test_distinct_words_are_encoded_once():
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8), "cpu")
    batch = tagger.encoder.batch([s.tokens for s in SENTENCES], [0, 3])
    distinct = {t for i in (0, 3) for t in SENTENCES[i].tokens}
    assert batch.char_ids.shape[0] == len(distinct)
    assert batch.mask.sum().item() == 15
    assert batch.word_to_distinct[0, 3] == batch.word_to_distinct[1, 7]  # both "Paris"


@pytest.mark.parametrize("char_encoder", ["lstm", "cnn"])
def test_padding_does_not_change_any_sentence(char_encoder):
    torch.manual_seed(0)
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8,
                                            char_encoder=char_encoder), "cpu")
    tagger.model.eval()
    tokens = [s.tokens for s in SENTENCES]
    with torch.no_grad():
        together = tagger.model.emissions(tagger.encoder.batch(tokens, [0, 1, 2, 3]))
        for row in range(4):
            alone = tagger.model.emissions(tagger.encoder.batch(tokens, [row]))
            length = len(tokens[row])
            assert torch.allclose(together[row, :length], alone[0], atol=1e-6)
    assert tagger.predict(tokens, batch_size=4) == [tagger.predict([t])[0] for t in tokens]


@pytest.mark.parametrize("char_encoder", ["lstm", "cnn"])
def test_encoding_each_distinct_word_once_equals_encoding_every_token(char_encoder):
    torch.manual_seed(0)
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8,
                                            char_encoder=char_encoder), "cpu")
    batch = tagger.encoder.batch([s.tokens for s in SENTENCES], [0, 1, 2, 3])
    encoder = tagger.model.char_encoder
    with torch.no_grad():
        once = encoder(batch.char_ids, batch.char_lengths)[batch.word_to_distinct]
        for row, sentence in enumerate(SENTENCES):
            for position, token in enumerate(sentence.tokens):
                chars = torch.tensor([tagger.encoder.char_ids(token)])
                alone = encoder(chars, torch.tensor([len(token)]))[0]
                assert torch.allclose(once[row, position], alone, atol=1e-6)


def test_long_tokens_are_clipped_to_their_start_and_end():
    from nerlstm.batching import MAX_WORD_CHARS, clipped

    word = "a" * 40 + "b" * 40
    assert clipped(word) == "a" * (MAX_WORD_CHARS // 2) + "b" * (MAX_WORD_CHARS // 2)
    assert clipped("Paris") == "Paris"


@pytest.mark.parametrize("bounded, width", [(True, 3), (False, 3), (True, 5)])
def test_char_cnn_equals_a_plain_loop_over_windows(bounded, width):
    from nerlstm.model import CharCnn

    torch.manual_seed(0)
    cnn = CharCnn(num_chars=10, char_dim=4, filters=5, width=width, bounded=bounded)
    side = width // 2
    with torch.no_grad():
        cnn.conv.weight.mul_(10)  # features beyond tanh's linear range
    words = [[3, 4, 5, 6], [7], [2, 9]]
    char_ids = torch.zeros(3, 4, dtype=torch.long)
    for row, chars in enumerate(words):
        char_ids[row, :len(chars)] = torch.tensor(chars)
    with torch.no_grad():
        got = cnn(char_ids, torch.tensor([4, 1, 2]))
        for row, chars in enumerate(words):
            # zero vectors stand for the positions before the first and after the last character
            embedded = torch.cat([torch.zeros(side, 4), cnn.embedding(torch.tensor(chars)),
                                  torch.zeros(side, 4)])
            kernel = cnn.conv.weight  # (filters, char_dim, width)
            windows = [(kernel * embedded[i:i + width].T).sum(dim=(1, 2)) + cnn.conv.bias
                       for i in range(len(chars))]
            expected = torch.stack(windows).max(dim=0).values
            expected = torch.tanh(expected) if bounded else expected
            assert torch.allclose(got[row], expected, atol=1e-6)
        assert (got.abs().max() <= 1) == bounded



def test_char_cnn_in_groups_of_similar_length_equals_one_padded_batch():
    """In inference, the CNN runs over words grouped by length: the same features."""
    from nerlstm.model import CharCnn

    torch.manual_seed(0)
    cnn = CharCnn(num_chars=30, char_dim=4, filters=5).eval()
    rng = random.Random(7)
    lengths = torch.tensor([rng.choice([1, 2, 5, 9, 30, 64]) for _ in range(3 * CharCnn.GROUP + 5)])
    char_ids = torch.zeros(len(lengths), int(lengths.max()), dtype=torch.long)
    for row, length in enumerate(lengths.tolist()):
        char_ids[row, :length] = torch.randint(1, 30, (length,))
    with torch.no_grad():
        grouped = cnn(char_ids, lengths)
        assert torch.equal(cnn._features(char_ids[:CharCnn.GROUP]), cnn(char_ids[:CharCnn.GROUP],
                                                                         lengths[:CharCnn.GROUP]))
        assert torch.allclose(grouped, cnn._features(char_ids), atol=1e-6)
        cnn.train()  # training keeps the one padded batch
        assert torch.allclose(cnn(char_ids, lengths), grouped, atol=1e-6)


def test_contexts_follow_documents_and_cut_long_ones():
    assert context_ids([0, 0, 1, 1, 1, 2]) == [0, 0, 1, 1, 1, 2]
    long = context_ids([5] * (2 * MAX_CONTEXT_SENTENCES + 3) + [6])
    assert long == [0] * MAX_CONTEXT_SENTENCES + [1] * MAX_CONTEXT_SENTENCES + [2] * 3 + [3]
    assert context_ids([]) == []


def test_context_numbering_counts_a_stream_as_context_ids_counts_a_file():
    from nerlstm.batching import context_numbering

    documents = [0] * 3 + [1] * (MAX_CONTEXT_SENTENCES + 2) + [1, 2, 2]
    context_of = context_numbering()
    assert [context_of(document) for document in documents] == context_ids(documents)


def test_context_batches_keep_contexts_whole_and_cover_every_sentence():
    contexts = context_ids([0] * 3 + [1] * 5 + [2] + [3] * 4)
    for rng in (None, random.Random(1)):
        groups = list(context_batches(contexts, 4, rng))
        assert sorted(i for group in groups for i in group) == list(range(len(contexts)))
        owner = {i: n for n, group in enumerate(groups) for i in group}
        assert all(owner[i] == owner[j] for i in range(13) for j in range(13)
                   if contexts[i] == contexts[j])
        assert all(len(group) >= 4 for group in groups[:-1])


def test_pooling_is_the_mean_over_a_words_mentions_in_its_document():
    from nerlstm.model import pooled_by_group

    torch.manual_seed(0)
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8), "cpu")
    tokens = [s.tokens for s in SENTENCES]
    # Sentences 0 and 3 form one document, 1 and 2 another.
    batch = tagger.encoder.batch(tokens, [0, 1, 2, 3], contexts=[0, 1, 1, 0])
    states = torch.randn(4, 10, 3)
    pooled = pooled_by_group(states, batch.group_ids)
    for row in range(4):
        for position, token in enumerate(tokens[row]):
            mentions = [states[other, at] for other in range(4) for at, word in
                        enumerate(tokens[other]) if word.lower() == token.lower()
                        and (other in (0, 3)) == (row in (0, 3))]
            assert torch.allclose(pooled[row, position], torch.stack(mentions).mean(dim=0))
    assert torch.equal(batch.group_ids[0, 3], batch.group_ids[3, 7])  # "Paris", one document
    assert not torch.equal(batch.group_ids[0, 3], batch.group_ids[2, 0])  # another document


@pytest.mark.parametrize("summary", [False, True])
def test_a_document_is_tagged_the_same_whatever_else_is_in_its_batch(summary):
    torch.manual_seed(0)
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8,
                                            doc_summary=summary), "cpu")
    tokens = [s.tokens for s in SENTENCES]
    contexts = [0, 1, 1, 0]
    together = tagger.tag(tokens, batch_size=4, contexts=contexts, scores=True)
    for members in ([0, 3], [1, 2]):
        alone = tagger.tag([tokens[i] for i in members], contexts=[0, 0], scores=True)
        for index, tagged in zip(members, alone):
            assert tagged.tags == together[index].tags
            assert [e.score for e in tagged.entities] == pytest.approx(
                [e.score for e in together[index].entities], abs=1e-6)


def test_without_contexts_each_sentence_is_read_alone():
    torch.manual_seed(0)
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8), "cpu")
    tokens = [s.tokens for s in SENTENCES]
    batch = tagger.encoder.batch(tokens, [0, 3])
    assert not torch.equal(batch.group_ids[0, 3], batch.group_ids[1, 7])  # "Paris" twice
    tagger.model.eval()
    with torch.no_grad():
        together = tagger.model.emissions(batch)
        alone = tagger.model.emissions(tagger.encoder.batch(tokens, [3]))
    assert torch.allclose(together[1], alone[0], atol=1e-6)


def test_the_document_summary_adds_the_mean_state_of_the_context():
    torch.manual_seed(0)
    config = Config(hidden=8, char_hidden=4, word_dim=8, doc_summary=True)
    tagger = build_tagger(SENTENCES, config, "cpu")
    model = tagger.model.eval()
    tokens = [s.tokens for s in SENTENCES]
    contexts = [0, 1, 1, 0]
    batch = tagger.encoder.batch(tokens, [0, 1, 2, 3], contexts=contexts)
    with torch.no_grad():
        emissions = model.emissions(batch)
        states = model.encode(batch)
    own, word, document = model.to_tags.weight.split(16, dim=1)
    for row in range(4):
        same_context = [other for other in range(4) if contexts[other] == contexts[row]]
        mean_state = torch.cat([states[other, :len(tokens[other])]
                                for other in same_context]).mean(dim=0)
        for position, token in enumerate(tokens[row]):
            mentions = torch.stack([states[other, at] for other in same_context
                                    for at, word_ in enumerate(tokens[other])
                                    if word_.lower() == token.lower()]).mean(dim=0)
            expected = (states[row, position] @ own.T + mentions @ word.T
                        + mean_state @ document.T + model.to_tags.bias)
            assert torch.allclose(emissions[row, position], expected, atol=1e-5)


def test_the_document_summary_is_off_without_document_context():
    assert Config(doc_context=False).checked().doc_summary is False
    assert Config().checked().doc_summary is True


@pytest.mark.parametrize("summary", [False, True])
@pytest.mark.parametrize("chunk_batches, batch_size", [(1, 1), (3, 4), (512, 4)])
def test_fast_document_emissions_equal_whole_context_batches(monkeypatch, chunk_batches,
                                                             batch_size, summary):
    """Tagging encodes sentences in length-sorted batches and pools afterwards: the same
    numbers as running whole contexts through the model, as training does."""
    from nerlstm import tagging

    monkeypatch.setattr(tagging, "DOCUMENT_CHUNK_BATCHES", chunk_batches)
    torch.manual_seed(0)
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8,
                                            doc_summary=summary), "cpu")
    tagger.model.eval()
    rng = random.Random(4)
    tokens = [SENTENCES[rng.randrange(4)].tokens for _ in range(23)]
    contexts = sorted(rng.randrange(5) for _ in range(23))
    with torch.no_grad():
        plain = tagger.model.emissions(tagger.encoder.batch(tokens, list(range(23)),
                                                            contexts=contexts))
        fast = {}
        for indices, emissions, mask in tagger._document_emissions(
                tokens, list(range(23)), contexts, batch_size=batch_size):
            for row, index in enumerate(indices):
                fast[index] = emissions[row, :int(mask[row].sum())]
    assert sorted(fast) == list(range(23))
    for index, sentence in enumerate(tokens):
        assert torch.allclose(fast[index], plain[index, :len(sentence)], atol=1e-6)


@pytest.mark.parametrize("locked", [True, False])
def test_locked_dropout_drops_the_same_features_at_every_token_of_a_sentence(locked, monkeypatch):
    import nerlstm.model

    torch.manual_seed(0)
    config = Config(hidden=8, char_hidden=4, word_dim=8, dropout=0.5, locked_dropout=locked)
    tagger = build_tagger(SENTENCES, config, "cpu")
    model = tagger.model.train()
    seen = {}
    plain = nerlstm.model.bidirectional_lstm

    def recording(lstm, inputs, lengths, mask):
        seen.update(inputs=inputs, lengths=lengths)
        return plain(lstm, inputs, lengths, mask)

    monkeypatch.setattr(nerlstm.model, "bidirectional_lstm", recording)
    states = model.encode(tagger.encoder.batch([s.tokens for s in SENTENCES], [0, 3]))
    inputs, lengths = seen["inputs"], seen["lengths"]
    for row, length in enumerate(lengths.tolist()):
        dropped = inputs[row, :length] == 0
        # each feature is dropped at every token of the sentence or at none
        same = bool((dropped == dropped[0]).all())
        assert same == locked
        assert 0 < dropped[0].float().mean() < 1
        # the word BiLSTM's output: with the locked mask, whole feature columns are zero
        out_dropped = states[row, :length] == 0
        assert bool((out_dropped == out_dropped[0]).all()) == locked
    model.eval()
    assert torch.equal(model.encode(tagger.encoder.batch([s.tokens for s in SENTENCES], [0, 3])),
                       model.encode(tagger.encoder.batch([s.tokens for s in SENTENCES], [0, 3])))


def test_locked_dropout_keeps_the_expected_value():
    from nerlstm.model import locked_dropout

    torch.manual_seed(0)
    inputs = torch.ones(400, 7, 50)
    dropped = locked_dropout(inputs, 0.3, training=True)
    assert dropped.unique().tolist() == pytest.approx([0.0, 1 / 0.7])
    assert abs(dropped.mean().item() - 1.0) < 0.02
    assert locked_dropout(inputs, 0.3, training=False) is inputs


def test_parts_for_worker_threads_never_cut_a_context_and_keep_every_sentence():
    torch.manual_seed(0)
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8), "cpu")
    tagger.workers = 3
    rng = random.Random(5)
    contexts = sorted(rng.randrange(40) for _ in range(400))
    # the later sentences are longer: equal numbers of sentences would not be equal work
    tokens = [["w"] * (1 + index // 20 + rng.randrange(5)) for index in range(400)]
    nonempty = [index for index in range(400) if index % 7]
    parts = tagger._parts(tokens, nonempty, contexts)
    assert len(parts) == 3
    assert [index for part in parts for index in part] == nonempty
    owners = [{contexts[index] for index in part} for part in parts]
    assert not (owners[0] & owners[1] or owners[1] & owners[2] or owners[0] & owners[2])
    part_tokens = [sum(len(tokens[index]) for index in part) for part in parts]
    # about equal shares of tokens (a part ends at the first context boundary past its share)
    assert max(part_tokens) - min(part_tokens) < 0.1 * sum(part_tokens)
    assert len(parts[0]) > len(parts[2])  # so the short sentences' part has more of them
    assert len(tagger._parts(tokens, nonempty[:100], contexts)) == 1  # too little to share


@pytest.mark.parametrize("with_contexts", [True, False])
def test_tagging_in_worker_threads_equals_tagging_in_one(with_contexts):
    torch.manual_seed(0)
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8), "cpu")
    rng = random.Random(6)
    tokens = [SENTENCES[rng.randrange(4)].tokens if rng.random() > 0.1 else []
              for _ in range(300)]
    contexts = sorted(rng.randrange(30) for _ in range(300)) if with_contexts else None
    plain = tagger.tag(tokens, batch_size=16, contexts=contexts, scores=True)
    tagger.workers = 3
    assert len(tagger._parts(tokens, [i for i, t in enumerate(tokens) if t], contexts)) == 3
    threaded = tagger.tag(tokens, batch_size=16, contexts=contexts, scores=True)
    assert [t.tags for t in threaded] == [t.tags for t in plain]
    plain_scores = [e.score for t in plain for e in t.entities]
    assert plain_scores  # an untrained model still finds some
    assert [e.score for t in threaded for e in t.entities] == pytest.approx(plain_scores,
                                                                            abs=1e-6)
