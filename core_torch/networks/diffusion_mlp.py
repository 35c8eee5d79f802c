"""DiffusionMLP: (noisy action chunk, timestep, observation history) -> noise or x0."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from core_torch.networks.embeddings import SinusoidalPosEmb
from core_torch.networks.linear import Linear
from core_torch.networks.mlp import MLP, build_mlp
from shared.param_spec import DiffusionMLPConfig, as_tuple


class DiffusionMLP(nn.Module):
    def __init__(
        self,
        action_dim: int,
        horizon_steps: int,
        cond_dim: int,
        time_dim: int = 16,
        mlp_dims: Sequence[int] = (256, 256),
        cond_mlp_dims: Sequence[int] | None = None,
        activation_type: str = "Mish",
        out_activation_type: str = "Identity",
        use_layernorm: bool = False,
        residual_style: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        cfg = DiffusionMLPConfig(action_dim, horizon_steps, cond_dim, time_dim, as_tuple(mlp_dims),
                                 as_tuple(cond_mlp_dims), activation_type, out_activation_type,
                                 use_layernorm, residual_style, dropout)
        self.config = cfg
        self.time_embedding = nn.Sequential(
            SinusoidalPosEmb(time_dim),
            Linear(time_dim, time_dim * 2),
            nn.Mish(),
            Linear(time_dim * 2, time_dim),
        )
        cond = cfg.cond_mlp()
        self.cond_mlp = None if cond is None else MLP(cond.dim_list, activation_type, "Identity")
        self.mlp_mean = build_mlp(cfg.mlp_mean())

    @classmethod
    def from_config(cls, cfg: DiffusionMLPConfig) -> DiffusionMLP:
        return cls(**cfg.__dict__)

    def forward(self, x: torch.Tensor, t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """x (B, Ta, Da), t (B,) int, state (B, To, Do) -> (B, Ta, Da)."""
        return self.denoise(x, self.time_embedding(t.reshape(-1)), self.condition(state))

    def condition(self, state: torch.Tensor) -> torch.Tensor:
        """state (B, To, Do) -> cond (B, C): the part of the input that is the same at every denoising step."""
        cond = state.reshape(state.shape[0], -1)
        return cond if self.cond_mlp is None else self.cond_mlp(cond)

    def denoise(self, x: torch.Tensor, t_emb: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, Ta, Da), t_emb (B or 1, time_dim), cond (B, C) -> (B, Ta, Da).

        Samplers embed all their timesteps once per chain and condition once per chain, then call
        this per step, so a step runs only the main MLP (a (1, time_dim) row is broadcast over B).
        """
        B, Ta, Da = x.shape
        h = torch.cat([x.reshape(B, -1), t_emb.expand(B, -1), cond], dim=-1)
        return self.mlp_mean(h).reshape(B, Ta, Da)
