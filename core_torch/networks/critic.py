"""CriticObs: state value V(s) from the flattened observation history; CriticObsAct: Q(s, a) with one
or two Q networks on the flattened history and the flattened action chunk."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from core_torch.networks.mlp import build_mlp
from shared.param_spec import CriticObsActConfig, CriticObsConfig, as_tuple


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


class CriticObsAct(nn.Module):
    def __init__(self, cfg: CriticObsActConfig) -> None:
        super().__init__()
        self.config = cfg
        for head in cfg.heads:
            self.add_module(head, build_mlp(cfg.q()))

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """state (B, To, Do), action (B, Ta, Da) -> (q1 (B,), q2 (B,)), or (q1,) without double_q."""
        x = torch.cat([state.reshape(state.shape[0], -1), action.reshape(action.shape[0], -1)], dim=-1)
        return tuple(getattr(self, head)(x)[:, 0] for head in self.config.heads)
