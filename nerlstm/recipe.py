"""Recipes: train options in a TOML file, and the effective options written back as TOML."""

from __future__ import annotations

import json
import sys
from dataclasses import fields

from nerlstm.config import Config
from nerlstm.conll import read_text
from nerlstm.errors import NerlstmError

# Train options a recipe may set besides the Config fields.
READING_KEYS = ("token_column", "tag_column", "encoding", "scheme", "threads", "device")
RECIPE_KEYS = tuple(field.name for field in fields(Config)) + READING_KEYS
KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
CHOICES = {"optimizer": ("sgd", "adam"), "char_encoder": ("lstm", "cnn"), "train_scheme": ("bioes", "iob2"),
           "scheme": ("auto", "iob1", "iob2", "bioes"), "device": ("auto", "cpu", "cuda")}


def load_recipe(path: str) -> dict:
    """The options in a TOML recipe, checked against the known train options."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        values = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as error:
        raise NerlstmError(f"not a valid TOML recipe: {error}", path=path) from None
    unknown = sorted(set(values) - set(RECIPE_KEYS))
    if unknown:
        raise NerlstmError(f"unknown option{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(unknown)}: expected some of {', '.join(RECIPE_KEYS)}",
                           path=path)
    defaults = Config().to_dict()
    for key, value in values.items():
        if key in CHOICES and value not in CHOICES[key]:
            raise NerlstmError(f"{key} = {value!r}: expected one of {', '.join(CHOICES[key])}",
                               path=path)
        expected = type(defaults[key]) if key in defaults else None
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)
        # TOML's true is a Python int too: a size or count must not take it.
        elif expected is not None and (not isinstance(value, expected)
                                       or (isinstance(value, bool) and expected is not bool)):
            shown = json.dumps(value) if isinstance(value, bool) else repr(value)  # as TOML
            raise NerlstmError(f"{key} = {shown}: expected {KIND_NAMES[expected]}", path=path)
    return values


def to_toml(values: dict) -> str:
    """Flat options as TOML, one ``key = value`` line each (None values left out)."""
    lines = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text = repr(value)
        else:
            text = json.dumps(str(value))  # a JSON string is a valid TOML basic string
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"
