"""What a setting is: its type, default, range, choices and help, defined once.

The fields of :class:`nerlstm.config.Config` (the model and its training) and of
:class:`nerlstm.config.DataSettings` (what a run reads and where it runs) are declared with
:func:`setting`; the train command's options, the checks of a TOML recipe and the recipe that
``--print-config`` writes are all derived from those declarations.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from dataclasses import dataclass
from typing import Any

from nerlstm.errors import NerlstmError

KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
              list: "a list of strings"}


@dataclass(frozen=True)
class Setting:
    """One setting of a run.

    Attributes:
        name: the field name, also the recipe key.
        kind: int, float, bool, str, or list (a list of strings).
        default: the value when neither the command line nor a recipe gives one.
        help: one sentence for ``--help`` and the recipe's comment.
        group: "model", "training", "data" or "run": where the setting belongs.
        flags: the option names, the long one first; derived from the name if empty.
        off_flag: for a bool, the flag that turns it off (``--cased-words``).
        minimum, maximum: the inclusive range of a number.
        below: an exclusive upper bound of a number (a rate that must stay under 1).
        choices: the values a string may take.
        optional: None is a value (not given), as for ``threads`` or ``dev``.
        metavar: what stands for the value in ``--help``.
    """

    name: str
    kind: type
    default: Any
    help: str
    group: str
    flags: tuple[str, ...] = ()
    off_flag: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    below: float | None = None
    choices: tuple[str, ...] | None = None
    optional: bool = False
    metavar: str | None = None

    @property
    def option_names(self) -> tuple[str, ...]:
        return self.flags or ("--" + self.name.replace("_", "-"),)

    def check(self, value: Any) -> Any:
        """The value, converted where TOML and JSON are loose (an integer for a number);
        raises NerlstmError saying what was expected."""
        if value is None and self.optional:
            return None
        kind = self.kind
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # TOML's true is a Python int too: a size or count must not take it.
        wrong_type = (not isinstance(value, kind) or
                      (isinstance(value, bool) and kind is not bool))
        if kind is list and not wrong_type:
            wrong_type = not all(isinstance(item, str) for item in value)
        if wrong_type:
            raise NerlstmError(f"{self.name} = {toml_value(value)}: expected "
                               f"{KIND_NAMES[kind]}", exit_code=2)
        if self.choices is not None and value not in self.choices:
            raise NerlstmError(f"{self.name} = {toml_value(value)}: expected one of "
                               f"{', '.join(self.choices)}", exit_code=2)
        if kind in (int, float):
            if (self.minimum is not None and value < self.minimum) or (
                    self.maximum is not None and value > self.maximum) or (
                    self.below is not None and value >= self.below):
                raise NerlstmError(f"{self.name} = {toml_value(value)}: expected "
                                   f"{self.range_text()}", exit_code=2)
        return value

    def range_text(self) -> str:
        """The range in words: ``a number from 0 to 1``, ``an integer of at least 1``."""
        what = KIND_NAMES[self.kind]
        low, high = self.minimum, self.maximum
        if self.below is not None:
            return (f"{what} from {low:g} up to (not including) {self.below:g}"
                    if low is not None else f"{what} below {self.below:g}")
        if low is not None and high is not None:
            return f"{what} from {low:g} to {high:g}"
        if low is not None:
            return f"{what} of at least {low:g}"
        if high is not None:
            return f"{what} of at most {high:g}"
        return what


def setting(default: Any, help: str, group: str, **details: Any) -> Any:
    """A dataclass field that declares a setting (its name and type come from the field)."""
    metadata = {"setting": (help, group, details)}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def declared(cls: type) -> dict[str, Setting]:
    """The settings declared by a dataclass's fields, in field order."""
    hints = typing.get_type_hints(cls)
    found = {}
    for field in dataclasses.fields(cls):
        if "setting" not in field.metadata:
            continue
        help, group, details = field.metadata["setting"]
        hint = hints[field.name]
        arguments = typing.get_args(hint)
        optional = type(None) in arguments  # str | None
        kind = next(arg for arg in arguments if arg is not type(None)) if optional else hint
        kind = typing.get_origin(kind) or kind  # list[str] -> list
        default = field.default if field.default is not dataclasses.MISSING else \
            field.default_factory()
        found[field.name] = Setting(field.name, kind, default, help, group,
                                    optional=optional, **details)
    return found


def suggestion(name: str, known: typing.Iterable[str]) -> str:
    """`` (did you mean hidden?)`` for a misspelt name, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def toml_value(value: Any) -> str:
    """A value as TOML writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML string


def to_toml(values: dict, known: dict[str, Setting] | None = None) -> str:
    """Flat settings as TOML, one ``key = value`` line each; None values are left out.

    With ``known`` settings, each group gets a heading comment and each line its help.
    """
    lines: list[str] = []
    group = None
    for key, value in values.items():
        if value is None:
            continue
        described = (known or {}).get(key)
        if described is not None:
            if described.group != group:
                group = described.group
                lines += ([""] if lines else []) + [f"# {group}"]
            lines.append(f"# {described.help}")
        lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"
