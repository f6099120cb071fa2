"""SIGINT and SIGTERM as a request to stop, so that a long run can end cleanly.

No torch here: the train command installs these handlers before it loads anything.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stop_requests() -> Iterator[list[int]]:
    """Turn SIGINT and SIGTERM into a request to stop after the current batch.

    Yields a list that receives the number of each signal caught. A second Ctrl-C while
    stopping interrupts at once. A signal the process was started ignoring stays ignored,
    as a shell's background jobs (`nerlstm train ... &` in a script) expect of SIGINT.
    """
    caught: list[int] = []
    try:
        previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not in the main thread: signals cannot be handled here
        yield caught
        return
    previous = {number: handler for number, handler in previous.items()
                if handler is not signal.SIG_IGN}

    def request_stop(number: int, frame: object) -> None:
        if caught and number == signal.SIGINT:
            raise KeyboardInterrupt
        caught.append(number)

    try:
        for number in previous:
            signal.signal(number, request_stop)
    except ValueError:
        yield caught
        return
    try:
        yield caught
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
