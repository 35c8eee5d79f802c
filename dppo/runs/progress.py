"""Progress of a long run (pre-training epochs, fine-tuning iterations).

A tqdm bar on stderr when stderr is a terminal. When stdout is not a terminal (CI, nohup, a log
file) or stderr is not one (so no bar shows), compact lines go to stdout instead: the first and last
step and, in between, at most one line every `interval` seconds. `--quiet` silences both.
"""

from __future__ import annotations

import sys
import time
from typing import Any


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    def __init__(self, total: int, initial: int, unit: str, quiet: bool, label: str, interval: float = 5.0) -> None:
        from tqdm import tqdm

        self.total, self.done, self.unit, self.label, self.interval = total, initial, unit, label, interval
        self.bar = tqdm(total=total, initial=initial, unit=unit, disable=quiet or not sys.stderr.isatty())
        self.lines = not quiet and not (sys.stdout.isatty() and sys.stderr.isatty())
        self._start, self._start_done = time.monotonic(), initial
        self._last_line: float | None = None

    def update(self, step: int, **values: Any) -> None:
        """One step done (`step`: its epoch or iteration number); values are shown beside it."""
        self.done += 1
        shown = {k: "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in values.items()}
        self.bar.update(1)
        if shown:
            self.bar.set_postfix(shown, refresh=False)
        now = time.monotonic()
        due = self._last_line is None or now - self._last_line >= self.interval or self.done >= self.total
        if not self.lines or not due:
            return
        self._last_line = now
        rate = (now - self._start) / max(1, self.done - self._start_done)
        left = rate * (self.total - self.done)
        text = " ".join(f"{k} {v}" for k, v in shown.items())
        print(f"{self.label} {self.unit} {step} ({self.done}/{self.total}) {text} | {rate:.2f} s/{self.unit}, "
              f"{_duration(left)} left", flush=True)

    def close(self) -> None:
        self.bar.close()
