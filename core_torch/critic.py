"""CriticObs: state value V(s) from the flattened observation history."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from core_torch.mlp import build_mlp
from shared.param_spec import CriticObsConfig, as_tuple


class CriticObs(nn.Module):
    def __init__(
        self,
        cond_dim: int,
        mlp_dims: Sequence[int] = (256, 256),
        activation_type: str = "Mish",
        use_layernorm: bool = False,
        residual_style: bool = False,
    ) -> None:
        super().__init__()
        self.config = CriticObsConfig(cond_dim, as_tuple(mlp_dims), activation_type, use_layernorm, residual_style)
        self.Q1 = build_mlp(self.config.q1())

    @classmethod
    def from_config(cls, cfg: CriticObsConfig) -> CriticObs:
        return cls(**cfg.__dict__)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """state (B, To, Do) or (B, To*Do) -> (B, 1)."""
        return self.Q1(state.reshape(state.shape[0], -1))
