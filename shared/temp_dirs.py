"""Temporary directories that are renamed into place as results (SavedModels, TF checkpoints)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def make_temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new, uniquely named directory under `parent`, like tempfile.mkdtemp, but with the mode a plain
    mkdir gives (0777 less the umask, e.g. 0755) instead of mkdtemp's 0700: once renamed into place it
    must be readable by the users who read its siblings (a TF Serving process running as another user)."""
    for _ in range(100):
        path = Path(parent) / f"{prefix}{secrets.token_hex(6)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free temporary name {prefix}* under {parent}")
