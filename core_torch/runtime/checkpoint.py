"""PyTorch-native checkpoint file (.pt): {group: {canonical name: tensor}, "meta": dict}.

Same groups and names as the canonical .npz, so conversion is a copy.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from shared.checkpoint import Checkpoint, atomic_write, check_meta
from shared.errors import CheckpointError


def save_torch_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> None:
    payload: dict = {"meta": dict(ckpt.meta, framework_native="torch")}
    for group, tensors in ckpt.groups.items():
        payload[group] = OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in tensors.items())
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _load_error(exc: Exception) -> str:
    """What torch.load's (multi-line) complaint comes down to, in one phrase."""
    text = str(exc)
    if "Weights only load failed" in text:
        refused = re.search(r"GLOBAL ([\w.]+)", text)
        if refused:
            return (f"it holds a Python object ({refused.group(1)}), not only tensors; refused without running it "
                    "(checkpoints are read with torch.load(weights_only=True))")
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        return f"not a file written by torch.save ({' '.join(detail.group(1).split()) if detail else 'unreadable'})"
    return " ".join(text.split()) or type(exc).__name__


def load_torch_file(path: str | os.PathLike, what: str = "torch checkpoint") -> Any:
    """torch.load with weights_only=True (a pickled payload never runs), every failure one CheckpointError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the load below decides
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read {what} {path}: {_load_error(exc)}") from None


def tensor_group(payload: dict, group: str, path: str | os.PathLike) -> OrderedDict:
    """payload[group] as {name: float numpy array}, or one CheckpointError naming what is wrong."""
    tensors = payload[group]
    if not isinstance(tensors, dict):
        raise CheckpointError(f"{path}: '{group}' must map tensor names to tensors, got {type(tensors).__name__}")
    arrays: OrderedDict = OrderedDict()
    for name, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: '{group}' entry {name!r} is not a tensor ({type(value).__name__})")
        try:
            arrays[str(name)] = value.detach().cpu().numpy()
        except (TypeError, RuntimeError) as exc:  # e.g. bfloat16, which numpy has no type for
            raise CheckpointError(f"{path}: '{group}' entry {name!r} ({value.dtype}) cannot be read: "
                                  f"{' '.join(str(exc).split())}") from None
    return arrays


def load_torch_checkpoint(path: str | os.PathLike) -> Checkpoint:
    payload = load_torch_file(path)
    if not isinstance(payload, dict) or "meta" not in payload:
        raise CheckpointError(f"{path} is not a dppo torch checkpoint (no 'meta' entry)")
    if not isinstance(payload["meta"], dict):
        raise CheckpointError(f"{path}: 'meta' must be a mapping, got {type(payload['meta']).__name__}")
    groups = {group: tensor_group(payload, group, path) for group in payload if group != "meta"}
    meta = dict(payload["meta"])
    meta.pop("framework_native", None)
    return Checkpoint(groups=groups, meta=check_meta(meta, path))
