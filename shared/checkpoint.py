"""The canonical, framework-neutral checkpoint: one .npz file.

Layout: arrays under "<group>/<canonical name>" (groups such as "model", "ema",
"optimizer"), plus "__meta__", a JSON string with format, framework, version,
step and the resolved config. Written atomically (temp file, then rename), read
without pickle.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import CheckpointError

FORMAT_NAME = "dppo-canonical"
FORMAT_VERSION = 1
META_KEY = "__meta__"


@dataclass
class Checkpoint:
    groups: dict[str, OrderedDict] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def group(self, name: str) -> OrderedDict:
        if name not in self.groups:
            have = ", ".join(sorted(self.groups)) or "none"
            raise CheckpointError(f"checkpoint has no '{name}' tensors (groups present: {have})")
        return self.groups[name]

    @property
    def config(self) -> dict[str, Any]:
        return self.meta.get("config", {})


def atomic_write(path: str | os.PathLike, write: Any, suffix: str = "") -> None:
    """Call write(tmp_path) on a temp file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_meta(meta: Any, path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's metadata as read from any format: a mapping, whose config (if any) is a mapping."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its metadata must be a mapping, got {type(meta).__name__}")
    if "config" in meta and not isinstance(meta["config"], dict):
        raise CheckpointError(f"{path}: its metadata's config must be a mapping, got {type(meta['config']).__name__}")
    return meta


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> None:
    arrays: dict[str, np.ndarray] = {}
    for group, tensors in ckpt.groups.items():
        if "/" in group:
            raise ValueError(f"group name may not contain '/': {group!r}")
        for name, value in tensors.items():
            arrays[f"{group}/{name}"] = np.asarray(value)
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **ckpt.meta}
    arrays[META_KEY] = np.array(json.dumps(meta, sort_keys=True))

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if META_KEY not in data.files:
                raise CheckpointError(f"{path} is not a dppo canonical checkpoint (no {META_KEY})")
            meta = json.loads(str(data[META_KEY]))
            groups: dict[str, OrderedDict] = {}
            for key in data.files:
                if key == META_KEY:
                    continue
                group, _, name = key.partition("/")
                groups.setdefault(group, OrderedDict())[name] = data[key]
    except CheckpointError:
        raise
    except Exception as exc:  # zip/npz/json corruption
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    check_meta(meta, path)
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} has format {meta.get('format')!r}, expected {FORMAT_NAME!r}")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {meta['format_version']}, newer than this build ({FORMAT_VERSION})"
        )
    return Checkpoint(groups=groups, meta=meta)


def check_strict(expected: Mapping[str, tuple[int, ...]], state: Mapping[str, Any], what: str = "model") -> None:
    """Raise one CheckpointError naming the first missing, unexpected or misshaped tensor."""
    missing = [k for k in expected if k not in state]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointError(f"{what}: missing tensor '{missing[0]}'{more}")
    extra = [k for k in state if k not in expected]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise CheckpointError(f"{what}: unexpected tensor '{extra[0]}'{more}")
    for name, shape in expected.items():
        got = tuple(np.shape(state[name]))
        if got != tuple(shape):
            raise CheckpointError(f"{what}: tensor '{name}' has shape {list(got)}, expected {list(shape)}")
