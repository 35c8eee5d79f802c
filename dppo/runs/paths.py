"""Output paths checked before any work starts (one UserError naming the path, so a long run never ends
unable to write its result), and JSON written with the same one-line failure."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from shared.errors import UserError


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
