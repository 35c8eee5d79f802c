"""Command-line arguments checked before any work starts: numeric options (argparse types, so a
bad value gets argparse's usage line and one error, exit 2) and output paths (one UserError naming
the path, so a long run never ends unable to write its result)."""

from __future__ import annotations

import argparse
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from shared.config_reader import MAX_SEED
from shared.errors import UserError


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (>= 1), got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer (>= 0), got {text!r}")
    return value


def seed(text: str) -> int:
    """argparse type: a seed every RNG takes, in [0, MAX_SEED]."""
    value = _int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in [0, {MAX_SEED}], got {text!r}")
    return value


def check_parent_writable(path: Path, option: str) -> None:
    """The nearest existing ancestor of path must be a directory this process may create entries in."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{option} {path}: {ancestor} is a file, not a directory")
    _probe(ancestor, f"{option} {path}")


def _probe(directory: Path, what: str) -> None:
    """Create and remove a file in directory: permission bits (os.access) say nothing for root, nor
    for pseudo file systems such as /proc."""
    if not os.access(directory, os.W_OK | os.X_OK):
        why = "read-only file system" if _read_only(directory) else "permission denied"
        raise UserError(f"{what}: cannot write in {directory} ({why})")
    try:
        fd, probe = tempfile.mkstemp(prefix=".dppo-write-check.", dir=directory)
    except OSError as exc:
        raise UserError(f"{what}: cannot write in {directory} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def _read_only(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_output_file(path: str | None, option: str) -> None:
    """A file the command will write (created with its parent directories, or replaced)."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise UserError(f"{option} {target} is a directory; expected a file name")
    if target.exists() and not os.access(target, os.W_OK):
        raise UserError(f"{option} {target}: cannot overwrite it (permission denied)")
    check_parent_writable(target, option)


def check_output_dir(path: str | None, option: str) -> None:
    """A directory the command will create (with its parents) or write into."""
    if path is None:
        return
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UserError(f"{option} {target} is a file; expected a directory")
    if target.is_dir():
        _probe(target, f"{option} {target}")
        return
    check_parent_writable(target, option)


def write_json(path: str, data: Any) -> None:
    """Write data as JSON to path (parents created); a failure is one UserError naming the path."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            json.dump(data, f, indent=2)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or errno.errorcode.get(exc.errno, exc)}") from None
