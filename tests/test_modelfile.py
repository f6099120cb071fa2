import pickle

import pytest
import torch
from test_batching import SENTENCES

from nerlstm.config import Config
from nerlstm.errors import NerlstmError
from nerlstm.modelfile import load_model, model_payload, save_model
from nerlstm.training import build_tagger


@pytest.fixture()
def tagger():
    torch.manual_seed(0)
    return build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8), "cpu")


def test_save_then_load_gives_identical_predictions_and_weights(tagger, tmp_path):
    path = tmp_path / "m.pt"
    save_model(tagger, str(path), {"best_epoch": 3})
    loaded, payload = load_model(str(path))
    tokens = [s.tokens for s in SENTENCES] + [["Unseen", "Words", "here"]]
    assert loaded.predict(tokens) == tagger.predict(tokens)
    for name, tensor in tagger.model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name])
    assert payload["summary"] == {"best_epoch": 3}
    assert payload["config"]["hidden"] == 8
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_model_file_from_before_document_context_loads_without_it(tmp_path):
    torch.manual_seed(0)
    old = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8,
                                         doc_context=False, char_encoder="lstm"), "cpu")
    payload = model_payload(old, {})
    del payload["config"]["doc_context"], payload["config"]["char_encoder"]
    path = tmp_path / "old.pt"
    torch.save(payload, path)
    loaded, _ = load_model(str(path))
    assert not loaded.model.config.doc_context and loaded.model.config.char_encoder == "lstm"
    tokens = [s.tokens for s in SENTENCES]
    assert loaded.predict(tokens) == old.predict(tokens)


def test_a_character_cnn_file_from_before_the_bound_keeps_its_unbounded_features(tmp_path):
    torch.manual_seed(0)
    old = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8, char_encoder="cnn",
                                         char_cnn_tanh=False), "cpu")
    with torch.no_grad():  # large filters, so that tanh would change the tags
        old.model.char_encoder.conv.weight.mul_(50)
    payload = model_payload(old, {})
    del payload["config"]["char_cnn_tanh"]
    path = tmp_path / "old.pt"
    torch.save(payload, path)
    loaded, _ = load_model(str(path))
    char_ids = torch.tensor([[3, 4, 5], [6, 0, 0]])
    with torch.no_grad():
        features = loaded.model.char_encoder(char_ids, torch.tensor([3, 1]))
        assert torch.equal(features, old.model.char_encoder(char_ids, torch.tensor([3, 1])))
    assert features.abs().max() > 1  # unbounded, as it was trained
    tokens = [s.tokens for s in SENTENCES]
    assert loaded.predict(tokens) == old.predict(tokens)


@pytest.mark.parametrize("char_encoder", ["lstm", "cnn"])
def test_both_character_encoders_save_and_load(char_encoder, tmp_path):
    torch.manual_seed(0)
    tagger = build_tagger(SENTENCES, Config(hidden=8, char_hidden=4, word_dim=8,
                                            char_encoder=char_encoder), "cpu")
    path = tmp_path / "m.pt"
    save_model(tagger, str(path), {})
    loaded, _ = load_model(str(path))
    tokens = [s.tokens for s in SENTENCES]
    contexts = [0, 1, 1, 0]
    assert loaded.predict(tokens, contexts=contexts) == tagger.predict(tokens, contexts=contexts)


def test_model_file_is_plain_data(tagger, tmp_path):
    path = tmp_path / "m.pt"
    save_model(tagger, str(path), {})
    torch.load(path, weights_only=True)  # raises if anything but plain data and tensors


def test_code_in_a_model_file_is_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    torch.save({"format": "nerlstm-model", "x": Payload()}, path, pickle_protocol=2)
    with pytest.raises(NerlstmError, match="refused to load"):
        load_model(str(path))
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    (b"", "damaged"),
    (b"hello world", "damaged"),
    (pickle.dumps({"a": 1}), "not a nerlstm model file"),
])
def test_foreign_and_damaged_files_are_refused(tmp_path, content, message):
    path = tmp_path / "m.pt"
    path.write_bytes(content)
    with pytest.raises(NerlstmError, match=message):
        load_model(str(path))


def test_truncated_and_other_versions_are_refused(tagger, tmp_path):
    path = tmp_path / "m.pt"
    save_model(tagger, str(path), {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NerlstmError, match="damaged"):
        load_model(str(path))
    torch.save({"format": "nerlstm-model", "format_version": 99, "nerlstm_version": "9.0"}, path)
    with pytest.raises(NerlstmError, match="version 99 .written by nerlstm 9.0. cannot be read"):
        load_model(str(path))
    torch.save({"some": "dict"}, path)
    with pytest.raises(NerlstmError, match="not a nerlstm model file"):
        load_model(str(path))
    payload = model_payload(tagger, {})
    del payload["state_dict"]
    torch.save(payload, path)
    with pytest.raises(NerlstmError, match="missing state_dict"):
        load_model(str(path))


def test_model_files_get_the_usual_permissions(tagger, tmp_path):
    import os

    path = tmp_path / "m.pt"
    save_model(tagger, str(path), {})
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
