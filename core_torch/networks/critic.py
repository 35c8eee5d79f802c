"""CriticObs: state value V(s) from the flattened observation history; CriticObsAct: Q(s, a) with one
or two Q networks on the flattened history and the flattened action chunk; CriticEnsemble: n single-head
CriticObsAct members (upstream RLPD's and IBRL's critic_networks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

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


class CriticEnsemble(nn.ModuleList):
    """n single-head Q networks, members named 0..n-1 (upstream evaluates them with vmap over stacked weights;
    a loop over the members computes the same)."""

    def __init__(self, cfg: CriticObsActConfig, n: int) -> None:
        super().__init__([CriticObsAct(replace(cfg, double_q=False)) for _ in range(n)])

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """state (B, To, Do), action (B, Ta, Da) or (B, Ta*Da) -> every member's Q (n, B)."""
        return torch.stack([member(state, action)[0] for member in self])

    def min_of_pair(self, state: torch.Tensor, action: torch.Tensor, pair: Sequence[int]) -> torch.Tensor:
        """min(Q_i, Q_j) (B,) of the two members `pair` (upstream draws them with randperm)."""
        i, j = (int(k) for k in pair)
        return torch.min(self[i](state, action)[0], self[j](state, action)[0])
