"""The one exception type for mistakes in the user's input, files or options."""

from __future__ import annotations


class NerlstmError(Exception):
    """A user error: the CLI prints it as one ``error:`` line and exits with ``exit_code``.

    Args:
        message: what was found, what was expected, and what to do.
        path: the file at fault, if any.
        line: 1-based line number in ``path``, if known.
        exit_code: 1 for bad input or model files, 2 for usage errors.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.exit_code = exit_code

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return where + self.message
