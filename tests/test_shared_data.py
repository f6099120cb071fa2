"""Every benchmark corpus in ../shared/data reads without error, with the published counts."""

import pytest
from conftest import SHARED, needs_shared

from nerlstm.conll import read_tagged

# sentences and entities per split, from ../shared/data/MANIFEST.md
EXPECTED = {
    "conll2003": ((14041, 3250, 3453), (23499, 5942, 5648), "iob1", {}),
    "conll2003/iob2": ((14041, 3250, 3453), (23499, 5942, 5648), "iob2", {}),
    "wnut17": ((3394, 1009, 1287), (1975, 836, 1079), "iob2", {}),
    "conll2002_es": ((8323, 1915, 1517), (18798, 4352, 3559), "iob2", {}),
    "conll2002_es/latin1": ((8323, 1915, 1517), (18798, 4352, 3559), "iob2",
                            {"encoding": "latin-1"}),
    "ncbi_disease": ((5424, 923, 940), (5134, 787, 960), "iob2", {}),
}


@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("corpus", sorted(EXPECTED))
def test_corpus_reads_with_published_counts(corpus):
    sentences, entities, scheme, options = EXPECTED[corpus]
    for split, n_sentences, n_entities in zip(("train", "dev", "test"), sentences, entities):
        data = read_tagged(str(SHARED / corpus / f"{split}.txt"), **options)
        assert len(data.sentences) == n_sentences
        assert sum(data.entity_counts.values()) == n_entities
        assert data.scheme == scheme


@needs_shared
def test_latin1_copy_without_encoding_is_one_clear_error():
    from nerlstm.errors import NerlstmError

    with pytest.raises(NerlstmError) as caught:
        read_tagged(str(SHARED / "conll2002_es" / "latin1" / "dev.txt"))
    assert caught.value.line is not None and "--encoding" in str(caught.value)
