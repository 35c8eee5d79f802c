"""DIPO's action gradient (torch side): replayed action chunks moved uphill on min(Q1, Q2) by a few
steps of torch's own Adam on the actions themselves, as upstream TrainDIPODiffusionAgent does."""

from __future__ import annotations

import torch
from torch import nn

from core_torch.runtime.optim import clip_grad_norm

ACTION_ADAM_EPS = 1e-5  # upstream's Adam on actions: lr = action_lr, eps = 1e-5, default betas, no decay


def improve_actions(critic: nn.Module, obs: torch.Tensor, actions: torch.Tensor, lr: float, steps: int,
                    max_norm: float) -> torch.Tensor:
    """obs (B, To, Do), actions (B, Ta, Da) -> improved actions (B, Ta, Da). A fresh Adam over the
    flattened chunks (B, Ta*Da); each step: gradient of -sum_b min(Q1, Q2), clipped to global norm
    max_norm over the whole minibatch, one Adam step, then actions clamped to [-1, 1]. The critic's
    own gradients are left untouched."""
    flat = actions.detach().reshape(actions.shape[0], -1).clone()  # (B, Ta*Da), a leaf
    opt = torch.optim.Adam([flat], lr=lr, eps=ACTION_ADAM_EPS)
    for _ in range(steps):
        flat.requires_grad_(True)
        q1, q2 = critic(obs, flat)
        (flat.grad,) = torch.autograd.grad(-torch.min(q1, q2).sum(), [flat])
        clip_grad_norm([flat], max_norm)
        opt.step()
        flat.requires_grad_(False)
        with torch.no_grad():
            flat.clamp_(-1.0, 1.0)
    return flat.detach().reshape(actions.shape)
