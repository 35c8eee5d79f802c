"""Sinusoidal embedding of the diffusion timestep."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from shared.diffusion_schedule import sinusoidal_frequencies


class SinusoidalPosEmb(nn.Module):
    """(B,) timesteps -> (B, dim) = [sin(t f), cos(t f)], f from shared/."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        freqs = torch.from_numpy(sinusoidal_frequencies(dim).astype(np.float32))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.to(torch.float32)[:, None] * self.freqs[None, :]  # (B, dim/2)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)
