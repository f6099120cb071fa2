import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from nerlstm import schemes
from nerlstm.errors import NerlstmError
from nerlstm.schemes import Span

TAGS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def test_spans_read_iob1_iob2_and_bioes_alike():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC"]
    iob2 = ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    bioes = ["B-PER", "E-PER", "S-PER", "O", "S-LOC"]
    expected = [Span("PER", 0, 2), Span("PER", 2, 3), Span("LOC", 4, 5)]
    assert schemes.spans(iob1) == schemes.spans(iob2) == schemes.spans(bioes) == expected


def test_i_after_o_starts_an_entity_as_in_conlleval():
    assert schemes.spans(["O", "I-ORG", "I-ORG", "I-PER"]) == [Span("ORG", 1, 3), Span("PER", 3, 4)]


@given(st.lists(st.sampled_from(TAGS), max_size=12))
def test_spans_equal_seqeval_default_mode(tags):
    expected = [(kind, start, end + 1) for kind, start, end in get_entities(tags)]
    assert sorted(schemes.spans(tags)) == sorted(expected)


@pytest.mark.parametrize("scheme", ["iob1", "iob2", "bioes"])
@given(tags=st.lists(st.sampled_from(TAGS), max_size=12))
def test_conversion_keeps_entities(scheme, tags):
    converted = schemes.convert(tags, scheme)
    assert schemes.spans(converted) == schemes.spans(tags)
    assert schemes.convert(converted, scheme) == converted


def test_conversion_examples():
    tags = ["I-PER", "I-PER", "B-PER", "O", "I-LOC"]
    assert schemes.convert(tags, "iob2") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert schemes.convert(tags, "bioes") == ["B-PER", "E-PER", "S-PER", "O", "S-LOC"]
    assert schemes.convert(schemes.convert(tags, "bioes"), "iob1") == tags


def test_detect_scheme():
    assert schemes.detect_scheme([["O", "S-PER"]]) == "bioes"
    assert schemes.detect_scheme([["I-PER", "I-PER", "B-PER", "O", "I-LOC"]]) == "iob1"
    assert schemes.detect_scheme([["B-PER", "I-PER", "O", "B-LOC"]]) == "iob2"
    # one stray I- after O in IOB2 data (as in CoNLL-2002) does not make it IOB1
    assert schemes.detect_scheme([["B-PER", "O", "B-LOC", "O", "I-ORG", "B-MISC"]]) == "iob2"


def test_check_tags_names_the_line_of_the_bad_tag():
    schemes.check_tags(["O", "B-creative-work", "S-X"], path="f", line=1)
    with pytest.raises(NerlstmError) as caught:
        schemes.check_tags(["O", "O", "X-PER"], path="f.txt", line=10)
    assert str(caught.value).startswith("f.txt:12: tag 'X-PER' fits no scheme")
    with pytest.raises(NerlstmError, match="IO scheme"):
        schemes.check_tags(["PER"], path="f.txt", line=1)


ALL = schemes.tag_set(["LOC", "PER"], "bioes")


def test_allowed_transitions_bioes_written_out():
    may_start, may_end, may_follow = schemes.allowed_transitions(ALL, "bioes")
    assert ALL == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]
    assert [tag for tag, ok in zip(ALL, may_start) if ok] == ["O", "B-LOC", "S-LOC", "B-PER", "S-PER"]
    assert [tag for tag, ok in zip(ALL, may_end) if ok] == ["O", "E-LOC", "S-LOC", "E-PER", "S-PER"]
    after = {tag: [b for b, ok in zip(ALL, row) if ok] for tag, row in zip(ALL, may_follow)}
    assert after["B-LOC"] == ["I-LOC", "E-LOC"]
    assert after["I-PER"] == ["I-PER", "E-PER"]
    assert after["E-LOC"] == after["O"] == ["O", "B-LOC", "S-LOC", "B-PER", "S-PER"]


@pytest.mark.parametrize("scheme", ["iob1", "iob2", "bioes"])
def test_every_converted_sequence_is_allowed_and_no_other(scheme):
    """The allowed set accepts exactly the sequences that conversion can produce."""
    rng = random.Random(0)
    full = schemes.tag_set(["LOC", "PER"], scheme)
    may_start, may_end, may_follow = schemes.allowed_transitions(full, scheme)
    index = {tag: number for number, tag in enumerate(full)}
    for _ in range(2000):
        tags = [rng.choice(full) for _ in range(rng.randint(1, 5))]
        ids = [index[tag] for tag in tags]
        allowed = (may_start[ids[0]] and may_end[ids[-1]]
                   and all(may_follow[a][b] for a, b in zip(ids, ids[1:])))
        assert allowed == (schemes.convert(tags, scheme) == tags), tags
