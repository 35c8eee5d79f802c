"""Sinusoidal embedding of the diffusion timestep."""

from __future__ import annotations

import torch
from torch import nn

from core_torch.runtime.precision import tensor
from shared.diffusion.schedule import sinusoidal_frequencies


class SinusoidalPosEmb(nn.Module):
    """(B,) timesteps -> (B, dim) = [sin(t f), cos(t f)], f from shared/."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        freqs = tensor(sinusoidal_frequencies(dim))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.to(self.freqs.dtype)[:, None] * self.freqs[None, :]  # (B, dim/2)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)
