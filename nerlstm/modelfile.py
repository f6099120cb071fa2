"""Saving and loading model files: plain data and tensors, never pickled code.

torch is imported by the functions that need it: describing an .onnx file loads none.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from typing import TYPE_CHECKING

from nerlstm import __version__
from nerlstm.batching import Encoder
from nerlstm.config import Config
from nerlstm.conll import open_binary
from nerlstm.errors import NerlstmError
from nerlstm.vocab import TagVocab, Vocab

if TYPE_CHECKING:
    import torch

    from nerlstm.tagging import Tagger

FORMAT = "nerlstm-model"
CHECKPOINT_FORMAT = "nerlstm-checkpoint"
FORMAT_VERSION = 1
READABLE_VERSIONS = (1,)
_REQUIRED_KEYS = ("config", "words", "chars", "tags", "train_scheme", "state_dict")


def atomic_save(payload: object, path: str) -> None:
    """torch.save to a temporary file beside ``path``, then rename it into place.

    A crash at any moment leaves either the old file or the new one, never a partial one.
    """
    import torch

    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                         dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save(payload, out)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp makes the file private; give it the mode a plainly written file would have
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def model_payload(tagger: Tagger, summary: dict) -> dict:
    import torch

    encoder = tagger.encoder
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nerlstm_version": __version__,
        "torch_version": str(torch.__version__),  # a str subclass otherwise
        "config": tagger.model.config.to_dict(),
        "words": encoder.words.symbols[2:],
        "chars": encoder.chars.symbols[2:],
        "tags": encoder.tags.symbols,
        "train_scheme": tagger.train_scheme,
        "state_dict": {name: tensor.detach().cpu().clone()
                       for name, tensor in tagger.model.state_dict().items()},
        "summary": summary,
    }


def save_model(tagger: Tagger, path: str, summary: dict) -> None:
    atomic_save(model_payload(tagger, summary), path)


def update_summary(path: str, changes: dict) -> None:
    """Rewrite the training summary of the model file at ``path`` with ``changes``."""
    payload = read_payload(path)
    payload["summary"] = {**(payload.get("summary") or {}), **changes}
    atomic_save(payload, path)


def read_payload(path: str) -> dict:
    """The checked contents of a model file, loaded without running any code."""
    return read_checked(path, FORMAT, _REQUIRED_KEYS)


def read_checked(path: str, expected_format: str, required_keys: tuple[str, ...]) -> dict:
    """Load a nerlstm file of ``expected_format`` safely and check its version and keys."""
    import torch

    what = "model file" if expected_format == FORMAT else "checkpoint"
    if os.path.isdir(path):
        raise NerlstmError(f"is a directory, expected a {what}", path=path)
    if not os.path.exists(path):
        raise NerlstmError(f"no such {what}", path=path)
    with open_binary(path) as handle:
        start = handle.read(2)
    if start != b"PK" and start[:1] != b"\x80":  # neither torch's zip nor its older pickle
        raise NerlstmError(f"not a {what}: expected a file written by nerlstm train",
                           path=path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on foreign pickle protocols
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).splitlines()[0] if "weights_only" not in str(error) else (
            "it holds Python objects other than plain data and tensors")
        raise NerlstmError(f"refused to load: not a nerlstm {what} ({reason})",
                           path=path) from None
    except Exception as error:  # foreign bytes make the unpickler fail in many ways
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise NerlstmError(f"not a nerlstm {what}, or a damaged one ({first})",
                           path=path) from None
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        raise NerlstmError(f"not a nerlstm {what}", path=path)
    version = payload.get("format_version")
    if version not in READABLE_VERSIONS:
        raise NerlstmError(
            f"model format version {version} (written by nerlstm "
            f"{payload.get('nerlstm_version', '?')}) cannot be read: this nerlstm "
            f"{__version__} reads version{'s' if len(READABLE_VERSIONS) > 1 else ''} "
            f"{', '.join(map(str, READABLE_VERSIONS))}", path=path)
    missing = [key for key in required_keys if key not in payload]
    if missing:
        raise NerlstmError(f"damaged {what}: missing {', '.join(missing)}", path=path)
    return payload


def load_model(path: str, device: torch.device | str = "cpu") -> tuple[Tagger, dict]:
    """The tagger stored in ``path`` and the file's contents (summary, versions, config)."""
    payload = read_payload(path)
    try:
        return tagger_from_payload(payload, device), payload
    except NerlstmError as error:
        raise NerlstmError(error.message, path=path) from None


def tagger_from_payload(payload: dict, device: torch.device | str = "cpu") -> Tagger:
    """Rebuild the network and vocabularies from a model payload."""
    from nerlstm.model import BiLstmCrf
    from nerlstm.tagging import Tagger

    config = Config.from_saved(payload["config"])
    words, chars = Vocab(payload["words"]), Vocab(payload["chars"])
    tags = TagVocab(payload["tags"])
    model = BiLstmCrf(config, len(words), len(chars), len(tags))
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as error:
        raise NerlstmError(f"damaged model file: weights do not fit its config ({error})"
                           .splitlines()[0]) from None
    model.to(device)
    model.eval()
    return Tagger(model, Encoder(words, chars, tags, config.doc_context),
                  payload["train_scheme"], device)


def describe(path: str) -> dict:
    """How a model was made and what it knows, as plain data (for ``nerlstm info``): a model
    file, or an .onnx file written by ``nerlstm export`` (read without torch)."""
    from nerlstm.onnx_tagger import is_onnx

    if is_onnx(path):
        from nerlstm.onnx_tagger import read_onnx_file

        payload, parameters = read_onnx_file(path)
        exported = {"format": "onnx", "quantized": payload.get("quantized"),
                    "exported_from": payload.get("source"),
                    "model_format_version": payload.get("model_format_version")}
    else:
        payload = read_payload(path)
        parameters = sum(tensor.numel() for tensor in payload["state_dict"].values())
        exported = {"format": "torch"}
    summary = payload.get("summary") or {}
    return {
        "path": path,
        "file_bytes": os.path.getsize(path),
        **exported,
        "format_version": payload["format_version"],
        "nerlstm_version": payload.get("nerlstm_version"),
        "torch_version": payload.get("torch_version"),
        "config": payload["config"],
        "train_scheme": payload["train_scheme"],
        "tags": payload["tags"],
        "entity_types": sorted({tag[2:] for tag in payload["tags"] if tag != "O"}),
        "words": len(payload["words"]) + 2,
        "characters": len(payload["chars"]) + 2,
        "parameters": parameters,
        "train": summary.get("train"),
        "dev": summary.get("dev"),
        "best_epoch": summary.get("best_epoch"),
        "best_dev": summary.get("best_dev"),
        "epochs_run": summary.get("epochs_run"),
        "reading": summary.get("reading"),
    }


def recipe_of(facts: dict) -> dict:
    """The settings that trained a model (see :func:`describe`), as a recipe: its config, and
    the data it read and how, where the model file records them."""
    recipe = Config.from_saved(facts["config"]).to_dict()  # settings that came later: off
    recipe["train"] = (facts.get("train") or {}).get("path")
    recipe["dev"] = (facts.get("dev") or {}).get("path")
    recipe.update(facts.get("reading") or {})
    return recipe
