"""Recipes: a run's settings in a TOML file, checked as the command line checks its options."""

from __future__ import annotations

import sys

from nerlstm.config import check_settings
from nerlstm.conll import read_text
from nerlstm.errors import NerlstmError


def load_recipe(path: str) -> dict:
    """The settings in a TOML recipe, each checked against its definition."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        values = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as error:
        raise NerlstmError(f"not a valid TOML recipe: {error}", path=path,
                           exit_code=2) from None
    return check_settings(values, path)
