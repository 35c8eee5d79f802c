"""Files of a training run in its logdir: metrics.jsonl, checkpoints, config.json.

Every write here that fails (permissions, read-only file system, full disk) raises one
WriteFailedError naming the path; files written before are left as they were (checkpoints and
metrics rewrites go through a temp file and a rename).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shared.checkpoint import Checkpoint, atomic_write, save_checkpoint
from shared.errors import WriteFailedError

_STATE = re.compile(r"^state_(\d+)\.npz$")
_TEMP = re.compile(r"^\..+\.tmp")  # shared.checkpoint.atomic_write's temp files: .<name>.<random>.tmp


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn an OSError raised while writing `path` into one WriteFailedError naming it."""
    try:
        yield
    except OSError as exc:
        raise WriteFailedError(path, exc) from None


class RunDir:
    def __init__(self, logdir: str | os.PathLike) -> None:
        self.root = Path(logdir)
        self.checkpoints = self.root / "checkpoint"
        self.metrics = self.root / "metrics.jsonl"

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints / f"state_{step}.npz"

    def latest_checkpoint(self) -> Path | None:
        if not self.checkpoints.is_dir():
            return None
        found = [(int(m.group(1)), p) for p in self.checkpoints.iterdir() if (m := _STATE.match(p.name))]
        return max(found)[1] if found else None

    def save_checkpoint(self, step: int, ckpt: Checkpoint) -> Path:
        path = self.checkpoint_path(step)
        with writing(path):
            save_checkpoint(path, ckpt)
        return path

    def remove_stale_temp_files(self) -> None:
        """Delete temp files a run killed in the middle of a write left behind (call with the lock held)."""
        stale = [p for d in (self.root, self.checkpoints) if d.is_dir() for p in d.iterdir() if _TEMP.match(p.name)]
        for p in stale:
            with writing(p):
                p.unlink()
        if stale:
            print(f"removed {len(stale)} temp file(s) left by an interrupted write in {self.root}", file=sys.stderr)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with writing(self.metrics):
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.metrics, "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics.exists():
            return []
        records = []
        for line in self.metrics.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a kill
                break
        return records

    def truncate_metrics(self, key: str, last: int | None) -> None:
        """Keep only records with record[key] <= last: drop what a killed run logged past its checkpoint,
        or everything (last=None) when the run starts over because no checkpoint was written."""
        if not self.metrics.exists():
            return
        kept = [] if last is None else [r for r in self.read_metrics() if r.get(key, 0) <= last]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        with writing(self.metrics):
            atomic_write(self.metrics, lambda tmp: Path(tmp).write_text(text))

    def write_config(self, cfg: dict[str, Any]) -> None:
        path = self.root / "config.json"
        with writing(path):
            atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(cfg, indent=2)))
