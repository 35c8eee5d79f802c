"""DDIM eta modules (upstream model/diffusion/eta.py), torch side; see shared/diffusion/eta.py for the four kinds.

Each maps state (B, To, Do) to eta (B, E), E = 1 or Da.
"""

from __future__ import annotations

import torch
from torch import nn

from core_torch.networks.mlp import build_mlp
from shared.diffusion.eta import EtaConfig


class Eta(nn.Module):
    def __init__(self, cfg: EtaConfig) -> None:
        super().__init__()
        self.config = cfg
        if cfg.state_dependent:
            self.mlp_res = build_mlp(cfg.mlp())
        else:
            self.eta_logit = nn.Parameter(torch.full((cfg.out_dim,), cfg.logit()))

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        c, B = self.config, state.shape[0]
        if c.state_dependent:
            eta = torch.tanh(self.mlp_res(state.reshape(B, -1))) + c.base_eta  # (B, E)
            return torch.clamp(eta, (c.min_eta - c.base_eta) + c.base_eta, (c.max_eta - c.base_eta) + c.base_eta)
        eta = 0.5 * (torch.tanh(self.eta_logit) + 1) * (c.max_eta - c.min_eta) + c.min_eta  # (E,)
        if c.kind == "EtaFixed":  # upstream reads it with .item(): a constant, no gradient
            eta = eta.detach()
        return eta[None, :].expand(B, -1)
