"""Optional Weights & Biases logging: on only when the config has a non-null `wandb` section
(upstream's configs have one: set wandb=null to turn it off)."""

from __future__ import annotations

import sys
from typing import Any


class WandbLogger:
    def __init__(self, section: dict[str, Any] | None, config: dict[str, Any]) -> None:
        self.run = None
        if not section:
            return
        try:
            import wandb
        except ImportError:
            print("note: the config has a 'wandb' section but the wandb package is not installed; logging to "
                  "metrics.jsonl and TensorBoard only (set wandb=null to silence this)", file=sys.stderr)
            return
        self.run = wandb.init(entity=section.get("entity"), project=section.get("project"),
                              name=section.get("run"), config=config, resume="allow")

    def log(self, step: int, values: dict[str, float]) -> None:
        if self.run is not None:
            self.run.log(values, step=step)

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
