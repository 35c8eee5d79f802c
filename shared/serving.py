"""The shapes an exported policy serves, whatever the runtime (SavedModel, ONNX)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyShape:
    cond_steps: int
    obs_dim: int
    horizon_steps: int
    action_dim: int
    act_steps: int
    num_steps: int  # S reverse steps
