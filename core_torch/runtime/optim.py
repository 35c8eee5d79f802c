"""AdamW (torch's own), gradient clipping, and optimizer state in canonical names."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

BETAS, EPS = (0.9, 0.999), 1e-8


def make_adamw(params: Sequence[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """Decoupled decay p *= 1 - lr*wd; eps added to sqrt(v_hat); bias-corrected step size.

    torch's fused kernel: one pass over all parameters (0.14 ms against 1.3 ms for the per-tensor
    loop on the hopper actor); same update as the loop up to float rounding (pretraining parity tests).
    """
    return torch.optim.AdamW(params, lr=lr, betas=BETAS, eps=EPS, weight_decay=weight_decay, fused=True)


def clip_grad_norm(params: Sequence[nn.Parameter], max_norm: float | None) -> float:
    """Scale all gradients by min(1, max_norm / (global_norm + 1e-6)); returns the global norm."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    if max_norm is not None:
        scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        for g in grads:
            g.mul_(scale)
    return float(norm)


def adamw_state(opt: torch.optim.AdamW, named: Sequence[tuple[str, nn.Parameter]]) -> OrderedDict:
    """{'step', 'exp_avg/<name>', 'exp_avg_sq/<name>'} as numpy (zeros before the first step)."""
    out: OrderedDict = OrderedDict()
    step = 0
    for name, p in named:
        st = opt.state.get(p, {})
        step = int(st["step"]) if "step" in st else step
        zeros = np.zeros(tuple(p.shape), p.detach().numpy().dtype)
        out[f"exp_avg/{name}"] = st["exp_avg"].numpy().copy() if "exp_avg" in st else zeros
        out[f"exp_avg_sq/{name}"] = st["exp_avg_sq"].numpy().copy() if "exp_avg_sq" in st else zeros
    out["step"] = np.array(step, np.int64)
    return out


def load_adamw_state(opt: torch.optim.AdamW, named: Sequence[tuple[str, nn.Parameter]], state: dict) -> None:
    step = int(state["step"])
    for name, p in named:
        if step == 0:
            opt.state.pop(p, None)
            continue
        opt.state[p] = {
            "step": torch.tensor(float(step)),
            "exp_avg": torch.from_numpy(np.array(state[f"exp_avg/{name}"], p.detach().numpy().dtype)),
            "exp_avg_sq": torch.from_numpy(np.array(state[f"exp_avg_sq/{name}"], p.detach().numpy().dtype)),
        }
