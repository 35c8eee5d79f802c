"""The reward-guided engine's conditional denoiser: eps_hat(x, p_t, t / T) for contexts x and parameters p.

Three branches of width H, concatenated as [context, parameters, time] and mapped back to p's size:
    time:       Linear(1, Dt) -> Linear(Dt, H), SiLU -> Linear(H, H), SiLU     (names embed_t, tproj.net)
    context:    Linear(Dx, H), SiLU                                            (xproj)
    parameters: Linear(Dp, H), SiLU                                            (pproj)
    core:       Linear(3H, H), SiLU -> Linear(H, H), SiLU -> Linear(H, Dp)      (core)
Parameter names are the engine's own (its CondDenoiser state dict), so one set of weights loads anywhere.
"""

from __future__ import annotations

import torch
from torch import nn

from core_torch.networks.activations import make_activation
from core_torch.networks.linear import Linear
from shared.param_spec import CondDenoiserConfig


def _dense(fan_in: int, fan_out: int) -> list[nn.Module]:
    return [Linear(fan_in, fan_out), make_activation("SiLU")]


class TimeMLP(nn.Module):
    def __init__(self, time_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(*_dense(time_dim, hidden), *_dense(hidden, hidden))

    def forward(self, t_emb: torch.Tensor) -> torch.Tensor:
        return self.net(t_emb)


class CondDenoiser(nn.Module):
    def __init__(self, cfg: CondDenoiserConfig) -> None:
        super().__init__()
        self.config = cfg
        h = cfg.hidden_dim
        self.tproj = TimeMLP(cfg.time_dim, h)
        self.embed_t = Linear(1, cfg.time_dim)
        self.xproj = nn.Sequential(*_dense(cfg.context_dim, h))
        self.pproj = nn.Sequential(*_dense(cfg.param_dim, h))
        self.core = nn.Sequential(*_dense(3 * h, h), *_dense(h, h), Linear(h, cfg.param_dim))

    def forward(self, x: torch.Tensor, p_t: torch.Tensor, t01: torch.Tensor) -> torch.Tensor:
        """x (B, Dx), p_t (B, Dp), t01 (B, 1) = t / T  ->  eps_hat (B, Dp)."""
        h_t = self.tproj(self.embed_t(t01))
        return self.core(torch.cat([self.xproj(x), self.pproj(p_t), h_t], dim=-1))
