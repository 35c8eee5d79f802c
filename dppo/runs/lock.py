"""One run per logdir: the run that owns a logdir holds `<logdir>/dppo.lock`, a file with its pid.

The file carries a POSIX record lock (fcntl), which the kernel drops when the process ends, however
it ends; so a lock file left by a killed run (SIGKILL, power loss) is recognised as stale and taken
over, and a pid that a new process reused cannot keep a logdir locked. Record locks are per process
and not inherited by forked workers (asynchronous envs), so they cannot hold it either.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path
from types import TracebackType

from shared.errors import LogdirBusyError, WriteFailedError

LOCK_NAME = "dppo.lock"

_HELD: set[Path] = set()  # lock files this process holds (record locks do not exclude the own process)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class LogdirLock:
    """`with LogdirLock(logdir):` holds the logdir for the block; another run gets LogdirBusyError."""

    def __init__(self, logdir: str | os.PathLike) -> None:
        self.root = Path(logdir)
        self.path = self.root / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        key = self.path.resolve()
        if key in _HELD:
            raise LogdirBusyError(f"logdir {self.root} is in use by this process (pid {os.getpid()})")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteFailedError(self.root, exc) from None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise WriteFailedError(self.path, exc) from None
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f"pid {holder}" if holder is not None else "a process that is starting"
                raise LogdirBusyError(f"logdir {self.root} is in use by another run ({who}, lock file {self.path}); "
                                      "wait for it to end or choose another logdir") from None
            # a run that ended between our open and lock removed the file: lock the one at the path now
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stale = _read_pid(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise WriteFailedError(self.path, exc) from None
        self._fd = fd
        _HELD.add(key)
        if stale is not None and stale != os.getpid():
            print(f"took over the stale lock of pid {stale} (no longer running) in {self.root}", file=sys.stderr)

    def release(self) -> None:
        if self._fd is None:
            return
        _HELD.discard(self.path.resolve())
        with contextlib.suppress(OSError):  # unlink while still locked, so no one locks a file on its way out
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> LogdirLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
