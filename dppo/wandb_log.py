"""Optional Weights & Biases logging: on only when the config has a non-null `wandb` section."""

from __future__ import annotations

from typing import Any

from shared.errors import ConfigError


class WandbLogger:
    def __init__(self, cfg: dict[str, Any]) -> None:
        section = cfg.get("wandb")
        self.run = None
        if not section:
            return
        try:
            import wandb
        except ImportError:
            raise ConfigError("config has a 'wandb' section but the wandb package is not installed; "
                              "pip install wandb, or set wandb=null") from None
        self.run = wandb.init(entity=section.get("entity"), project=section.get("project"),
                              name=section.get("run"), config=cfg, resume="allow")

    def log(self, step: int, values: dict[str, float]) -> None:
        if self.run is not None:
            self.run.log(values, step=step)

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
