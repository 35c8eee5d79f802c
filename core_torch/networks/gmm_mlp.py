"""GMM_MLP: observation history -> per-mode means, stds and mixture logits of an action chunk (upstream's names)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict

import torch
from torch import nn

from core_torch.networks.mlp import build_mlp
from shared.param_spec import as_tuple
from shared.param_spec.gmm_mlp import GMMMLPConfig


class GMMMLP(nn.Module):
    def __init__(
        self,
        action_dim: int,
        horizon_steps: int,
        cond_dim: int,
        mlp_dims: Sequence[int] = (256, 256, 256),
        num_modes: int = 5,
        activation_type: str = "Mish",
        residual_style: bool = False,
        use_layernorm: bool = False,
        fixed_std: float | None = None,
        learn_fixed_std: bool = False,
        std_min: float = 0.01,
        std_max: float = 1.0,
    ) -> None:
        super().__init__()
        c = self.config = GMMMLPConfig(action_dim, horizon_steps, cond_dim, as_tuple(mlp_dims), num_modes,
                                       activation_type, residual_style, use_layernorm, fixed_std, learn_fixed_std,
                                       std_min, std_max)
        if c.fixed_std is not None and c.learn_fixed_std:
            self.logvar = nn.Parameter(torch.full((c.action_dim * c.num_modes,), c.logvar_init()))
        self.mlp_mean = build_mlp(c.mlp(c.output_dim))
        if c.fixed_std is None:
            self.mlp_logvar = build_mlp(c.mlp(c.output_dim))
        self.mlp_weights = build_mlp(c.mlp(c.num_modes))
        self.logvar_min = math.log(c.std_min**2)
        self.logvar_max = math.log(c.std_max**2)

    @classmethod
    def from_config(cls, cfg: GMMMLPConfig) -> GMMMLP:
        return cls(**asdict(cfg))

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """state (B, To, Do) -> means (B, M, Ta*Da) in (-1, 1), stds (B, M, Ta*Da), logits (B, M)."""
        c = self.config
        B, M = state.shape[0], c.num_modes
        h = state.reshape(B, -1)  # (B, To*Do)
        means = torch.tanh(self.mlp_mean(h)).reshape(B, M, c.chunk_dim)
        if c.fixed_std is None:
            logvar = self.mlp_logvar(h).reshape(B, M, c.chunk_dim).clamp(self.logvar_min, self.logvar_max)
            stds = torch.exp(0.5 * logvar)
        elif c.learn_fixed_std:
            logvar = self.logvar.clamp(self.logvar_min, self.logvar_max)  # (M*Da,)
            stds = torch.exp(0.5 * logvar).reshape(1, M, c.action_dim).repeat(B, 1, c.horizon_steps)  # (B, M, Ta*Da)
        else:
            stds = torch.full_like(means, c.fixed_std)
        logits = self.mlp_weights(h).reshape(B, M)
        return means, stds, logits
