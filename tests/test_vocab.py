from collections import Counter

from nerlstm.vocab import UNK, Vocab, build_vocabs, word_keys


def test_lookup_order_exact_then_lowercase_then_digits():
    vocab = Vocab(["Paris", "paris", "london", "0000", "a0-0"])
    assert vocab.word_id("Paris") == vocab.index["Paris"]
    assert vocab.word_id("LONDON") == vocab.index["london"]
    assert vocab.word_id("1996") == vocab.index["0000"]
    assert vocab.word_id("A1-9") == vocab.index["a0-0"]
    assert vocab.word_id("Berlin") == vocab.index[UNK] == 1
    assert word_keys("Ab1") == ("Ab1", "ab1", "Ab0", "ab0")


def test_build_vocabs_orders_by_frequency_and_keeps_case():
    words, chars, counts = build_vocabs([["The", "the", "1996"], ["the"]])
    assert words.symbols[2:] == ["the", "0000", "The"]
    assert counts == Counter({"the": 2, "The": 1, "0000": 1})
    assert set(chars.symbols[2:]) == set("Thethe1996")
    lowered, _, _ = build_vocabs([["The", "the"]], lowercase_words=True)
    assert lowered.symbols[2:] == ["the"]
