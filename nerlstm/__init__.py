"""nerlstm: named-entity recognition with a character+word BiLSTM encoder and a CRF decoder.

From Python::

    import nerlstm

    tagger = nerlstm.load("model.pt")
    result = tagger("Peter Blackburn visited Paris.")
    for entity in result.entities:
        print(entity.label, entity.text, entity.start, entity.end, entity.score)

Importing nerlstm loads no torch; :func:`load`, :func:`train` and :func:`evaluate` do
(:func:`read_data` and :func:`convert`, which read CoNLL, JSONL and Hugging Face data, do not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nerlstm.config import Config
from nerlstm.errors import NerlstmError
from nerlstm.results import Span, TaggedText, Token

__version__ = "0.1.0"

__all__ = ["Config", "Evaluation", "NerlstmError", "Span", "TaggedText", "TextTagger", "Token",
           "TrainingResult", "__version__", "convert", "evaluate", "export", "load", "read_data",
           "train"]

if TYPE_CHECKING:
    from nerlstm.api import Evaluation, TextTagger, convert, evaluate, load, read_data, train
    from nerlstm.onnx_export import export
    from nerlstm.training import TrainingResult

_LAZY = {"load": "nerlstm.api", "train": "nerlstm.api", "evaluate": "nerlstm.api",
         "convert": "nerlstm.api", "read_data": "nerlstm.api", "export": "nerlstm.onnx_export",
         "TextTagger": "nerlstm.api", "Evaluation": "nerlstm.api",
         "TrainingResult": "nerlstm.training"}


def __getattr__(name: str):
    """The parts that need torch, imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nerlstm' has no attribute {name!r}")
