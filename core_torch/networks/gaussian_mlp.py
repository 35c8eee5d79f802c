"""Gaussian_MLP: observation history -> mean and std of an action chunk (upstream's names)."""

from __future__ import annotations

import math

import torch
from torch import nn

from core_torch.networks.mlp import build_mlp
from shared.param_spec import GaussianMLPConfig


class GaussianMLP(nn.Module):
    def __init__(self, cfg: GaussianMLPConfig) -> None:
        super().__init__()
        self.config = cfg
        if cfg.fixed_std is None:
            self.mlp_base = build_mlp(cfg.mlp_base())
            self.mlp_mean = build_mlp(cfg.head())
            self.mlp_logvar = build_mlp(cfg.head())
        else:
            self.mlp_mean = build_mlp(cfg.mean_only())
            if cfg.learn_fixed_std:
                self.logvar = nn.Parameter(torch.full((cfg.action_dim,), math.log(cfg.fixed_std**2)))
        self.logvar_min = math.log(cfg.std_min**2)
        self.logvar_max = math.log(cfg.std_max**2)

    @classmethod
    def from_config(cls, cfg: GaussianMLPConfig) -> GaussianMLP:
        return cls(cfg)

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """state (B, To, Do) -> mean, std, each (B, Ta * Da)."""
        c = self.config
        B = state.shape[0]
        h = state.reshape(B, -1)
        if c.fixed_std is None:
            h = self.mlp_base(h)
        mean = self.mlp_mean(h)
        if c.tanh_output:
            mean = torch.tanh(mean)
        if c.fixed_std is None:
            squashed = torch.tanh(self.mlp_logvar(h))  # (-1, 1) -> [logvar_min, logvar_max]
            logvar = self.logvar_min + 0.5 * (self.logvar_max - self.logvar_min) * (squashed + 1)
            std = torch.exp(0.5 * logvar)
        elif c.learn_fixed_std:
            logvar = torch.clamp(self.logvar, self.logvar_min, self.logvar_max)
            std = torch.exp(0.5 * logvar).repeat(c.horizon_steps)[None, :].expand(B, -1)
        else:
            std = torch.full_like(mean, c.fixed_std)
        return mean, std
