"""A policy's observation on the torch side: a state tensor (B, To, Do), or a camera observation's
(state, rgb) pair (rgb (B, T, C, H, W) uint8, scaled inside the image networks). shared/data/observations.py
is the numpy side; this is the one place here that tells the two forms apart."""

from __future__ import annotations

import numpy as np
import torch

from shared.data import observations as ob

Cond = torch.Tensor | tuple[torch.Tensor, ...]


def obs_tensors(obs: ob.Obs) -> Cond:
    """numpy observation -> its tensor form: the state tensor, or (state, rgb) (frames kept uint8)."""
    if ob.is_image(obs):
        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in ob.network_inputs(obs))
    return torch.from_numpy(obs)


def cond_inputs(obs: Cond) -> tuple[torch.Tensor, ...]:
    """The positional inputs a network's condition / forward takes: (state,) or (state, rgb)."""
    return obs if isinstance(obs, tuple) else (obs,)


def state_input(obs: Cond) -> torch.Tensor:
    """The state part (B, To, Do)."""
    return cond_inputs(obs)[0]


def repeat_rows(obs: Cond, k: int) -> Cond:
    """Every row repeated k times in place (row b -> rows b k .. b k + k - 1), on each part."""
    if isinstance(obs, tuple):
        return tuple(x.repeat_interleave(k, dim=0) for x in obs)
    return obs.repeat_interleave(k, dim=0)
