"""How a run stops early: SIGTERM becomes an exception, the message names the checkpoint that is
kept, and loggers are closed without hiding the reason the run stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shared.errors import RunTerminated, UserError


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises RunTerminated in the main thread, so `finally` blocks run and
    temp files are removed; a second SIGTERM ends the process at once."""

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise RunTerminated("terminated by SIGTERM")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def with_kept_checkpoint(exc: UserError | RunTerminated, last_saved: str | os.PathLike | None) -> BaseException:
    """`exc` with its message saying which checkpoint is kept and how to go on."""
    kept = f"last checkpoint {Path(last_saved)} kept" if last_saved else "no checkpoint written yet"
    resume = "; rerun the same command to resume" if isinstance(exc, RunTerminated) else ""
    exc.args = (f"{exc}; {kept}{resume}",)
    return exc


def close_all(*things: Any) -> None:
    """close() each; while an exception is on its way out, errors from closing are dropped so that
    the message names what stopped the run."""
    failing = sys.exc_info()[0] is not None
    for thing in things:
        if failing:
            with contextlib.suppress(Exception):
                thing.close()
        else:
            thing.close()
