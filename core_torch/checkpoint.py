"""PyTorch-native checkpoint file (.pt): {group: {canonical name: tensor}, "meta": dict}.

Same groups and names as the canonical .npz, so conversion is a copy.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import torch

from shared.checkpoint import Checkpoint, atomic_write
from shared.errors import CheckpointError


def save_torch_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> None:
    payload: dict = {"meta": dict(ckpt.meta, framework_native="torch")}
    for group, tensors in ckpt.groups.items():
        payload[group] = OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in tensors.items())
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_torch_checkpoint(path: str | os.PathLike) -> Checkpoint:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read torch checkpoint {path}: {exc}") from None
    if not isinstance(payload, dict) or "meta" not in payload:
        raise CheckpointError(f"{path} is not a dppo torch checkpoint (no 'meta' entry)")
    groups = {
        group: OrderedDict((k, v.detach().cpu().numpy()) for k, v in tensors.items())
        for group, tensors in payload.items()
        if group != "meta"
    }
    meta = dict(payload["meta"])
    meta.pop("framework_native", None)
    return Checkpoint(groups=groups, meta=meta)
