import gzip
import struct

import pytest
import torch
from conftest import DATA, SHARED, TINY, needs_shared, run_cli, write

from nerlstm.embeddings import initial_table, read_vectors, wanted_keys
from nerlstm.errors import NerlstmError
from nerlstm.vocab import Vocab

WORDS = {"the": [0.1, 0.2, 0.3], "Paris": [1.0, -1.0, 0.5], "new york": [0.0, 0.0, 1.0],
         "0000": [2.0, 2.0, 2.0]}


def text_lines(header: bool) -> bytes:
    lines = [f"{len(WORDS)} 3"] if header else []
    lines += [f"{word} {' '.join(map(str, vector))}  " for word, vector in WORDS.items()]
    return ("\n".join(lines) + "\n").encode()


BINARY_WORDS = {word: vector for word, vector in WORDS.items() if " " not in word}


def binary(words=BINARY_WORDS) -> bytes:
    data = f"{len(words)} 3\n".encode()
    for word, vector in words.items():
        data += word.encode() + b" " + struct.pack("<3f", *vector) + b"\n"
    return data


@pytest.mark.parametrize("name, content", [
    ("glove.txt", text_lines(header=False)),
    ("w2v.vec", text_lines(header=True)),
    ("glove.txt.gz", gzip.compress(text_lines(header=False))),
    ("w2v.bin", binary()),
    ("w2v.bin.gz", gzip.compress(binary())),
])
def test_every_format_is_detected_and_read(tmp_path, name, content):
    vectors = read_vectors(str(write(tmp_path / name, content)))
    expected = BINARY_WORDS if ".bin" in name else WORDS  # text allows words with spaces
    assert vectors.dim == 3 and vectors.words_in_file == len(expected)
    assert set(vectors.vectors) == set(expected)
    for word, values in expected.items():
        assert torch.allclose(vectors.vectors[word], torch.tensor(values))


def test_only_wanted_words_are_kept_and_duplicates_counted(tmp_path):
    content = text_lines(header=False) + b"the 9 9 9\n"
    vectors = read_vectors(str(write(tmp_path / "g.txt", content)), wanted_keys(["THE", "1999"]))
    assert set(vectors.vectors) == {"the", "0000"}
    assert vectors.duplicates == 1 and vectors.vectors["the"][0].item() == pytest.approx(0.1)


@pytest.mark.parametrize("content, fragment", [
    (b"a 1 2 3\nb 1 2\n", "g.txt:2: expected a word and 3 numbers"),
    (b"a 1 2 3\nb 1 x 3\n", "g.txt:2: expected numbers"),
    (b"2 3\na 1 2 3\nb 1 2 3 4 5\n", "g.txt:3: expected 3 numbers like the lines before, found 5"),
    (b"", "no vectors"),
])
def test_malformed_vector_files_name_the_line(tmp_path, content, fragment):
    with pytest.raises(NerlstmError) as caught:
        read_vectors(str(write(tmp_path / "g.txt", content)))
    assert fragment in str(caught.value)


def test_truncated_binary_is_refused(tmp_path):
    path = write(tmp_path / "w.bin", binary()[:-7])
    with pytest.raises(NerlstmError, match="file ends"):
        read_vectors(str(path))


def test_initial_table_uses_vectors_and_the_file_scale(tmp_path):
    vectors = read_vectors(str(write(tmp_path / "g.txt", text_lines(header=False))))
    words = Vocab(["Paris", "THE", "1999", "unknown"])
    table, from_file = initial_table(words, vectors, torch.Generator().manual_seed(0))
    assert from_file == 3 and table.shape == (6, 3)
    assert torch.equal(table[0], torch.zeros(3))
    assert torch.allclose(table[words.index["THE"]], torch.tensor(WORDS["the"]))
    assert torch.allclose(table[words.index["1999"]], torch.tensor(WORDS["0000"]))


@needs_shared
@pytest.mark.parametrize("name, words, dim", [("test_glove.txt", 76, 50),
                                              ("lee_fasttext.vec", 1762, 10)])
def test_shared_vector_files(name, words, dim):
    vectors = read_vectors(str(SHARED / "embeddings" / name))
    assert (vectors.words_in_file, vectors.dim, len(vectors.vectors)) == (words, dim, words)


@needs_shared
def test_training_with_embeddings_end_to_end(tmp_path):
    model = tmp_path / "m.pt"
    args = [arg for arg in TINY]
    args[args.index("--epochs") + 1] = "2"
    result = run_cli("train", DATA / "train.txt", "--dev", DATA / "dev.txt", "-m", model, *args,
                     "--embeddings", SHARED / "embeddings" / "test_glove.txt")
    assert result.exit_code == 0, result.output
    assert "embeddings:" in result.stderr and "of training tokens" in result.stderr
    payload = torch.load(model, weights_only=True)
    table = payload["state_dict"]["word_embedding.weight"]
    assert table.shape == (len(payload["words"]) + 2, 50)  # the file's dimension
    assert payload["config"]["word_dim"] == 50
    # only the rows of the vocabulary are stored: far smaller than the data + file
    assert model.stat().st_size < 2_000_000
    tagged = run_cli("tag", "-m", model, input="Peter visited Paris .\n")
    assert tagged.exit_code == 0


def test_an_unreadable_embeddings_file_stops_before_training(tmp_path):
    result = run_cli("train", DATA / "train.txt", "-m", tmp_path / "m.pt",
                     "--embeddings", tmp_path / "missing.vec")
    assert result.exit_code == 1 and "missing.vec: no such file" in result.output
    assert not (tmp_path / "m.pt").exists()
