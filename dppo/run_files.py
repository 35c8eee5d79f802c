"""Files of a training run in its logdir: metrics.jsonl, checkpoints, TensorBoard events."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from shared.checkpoint import atomic_write

_STATE = re.compile(r"^state_(\d+)\.npz$")


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

    def append_metrics(self, record: dict[str, Any]) -> None:
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

    def truncate_metrics(self, key: str, last: int) -> None:
        """Keep only records with record[key] <= last (drop what a killed run logged past its checkpoint)."""
        kept = [r for r in self.read_metrics() if r.get(key, 0) <= last]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        atomic_write(self.metrics, lambda tmp: Path(tmp).write_text(text))

    def write_config(self, cfg: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.root / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(cfg, indent=2)))
