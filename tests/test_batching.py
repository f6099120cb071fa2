import random

import torch

from nerlstm.batching import batch_indices
from nerlstm.config import Config
from nerlstm.conll import Sentence
from nerlstm.training import build_tagger

SENTENCES = [
    Sentence(["Peter", "Blackburn", "visited", "Paris", "."], ["B-PER", "I-PER", "O", "B-LOC", "O"]),
    Sentence(["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"]),
    Sentence(["Paris"], ["B-LOC"]),
    Sentence(["The", "EU", "said", "Peter", "'s", "call", "to", "Paris", "failed", "."],
             ["O", "B-ORG", "O", "B-PER", "O", "O", "O", "B-LOC", "O", "O"]),
]


def test_batches_group_similar_lengths_and_cover_every_sentence():
    lengths = [5, 1, 9, 2, 5, 1, 9, 2]
    groups = list(batch_indices(lengths, 2, random.Random(0)))
    assert sorted(i for g in groups for i in g) == list(range(8))
    assert all(len({lengths[i] for i in group}) == 1 for group in groups)
    assert list(batch_indices(lengths, 3)) == [[1, 5, 3], [7, 0, 4], [2, 6]]


def test_distinct_words_are_encoded_once():
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8), "cpu")
    batch = tagger.encoder.batch([s.tokens for s in SENTENCES], [0, 3])
    distinct = {t for i in (0, 3) for t in SENTENCES[i].tokens}
    assert batch.char_ids.shape[0] == len(distinct)
    assert batch.mask.sum().item() == 15
    assert batch.word_to_distinct[0, 3] == batch.word_to_distinct[1, 7]  # both "Paris"


def test_padding_does_not_change_any_sentence():
    torch.manual_seed(0)
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8), "cpu")
    tagger.model.eval()
    tokens = [s.tokens for s in SENTENCES]
    with torch.no_grad():
        together = tagger.model.emissions(tagger.encoder.batch(tokens, [0, 1, 2, 3]))
        for row in range(4):
            alone = tagger.model.emissions(tagger.encoder.batch(tokens, [row]))
            length = len(tokens[row])
            assert torch.allclose(together[row, :length], alone[0], atol=1e-6)
    assert tagger.predict(tokens, batch_size=4) == [tagger.predict([t])[0] for t in tokens]


def test_encoding_each_distinct_word_once_equals_encoding_every_token():
    torch.manual_seed(0)
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8), "cpu")
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
