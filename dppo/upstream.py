"""Import PyTorch checkpoints written by upstream irom-lab/dppo into the canonical format.

Upstream saves `state_<n>.pt` as {"epoch" or "itr", "model": state_dict, "ema": state_dict}.
Our canonical names are upstream's state_dict keys, so the mapping is mostly identity:

| upstream key (state_dict)               | canonical group / name                  |
| --------------------------------------- | --------------------------------------- |
| pre-training `model` / `ema`: network.* | `model` / `ema`: network.*              |
| fine-tuning `model`: actor.*            | `model`: actor.* (frozen base policy)   |
| fine-tuning `model`: actor_ft.*         | `model`: actor_ft.*                     |
| fine-tuning `model`: critic.*           | `model`: critic.*                       |
| fine-tuning `model`: eta.* (model.eta)  | `model`: eta.* (DDIM eta: logit or MLP) |
| fine-tuning `model`: network.*          | dropped: the same tensors as actor.*    |

A fine-tuning checkpoint without actor.* takes its base policy from network.*. Keys that hold no
learned state in upstream (Gaussian_MLP's logvar_min / logvar_max constants) are dropped; any
other extra, missing or wrongly shaped tensor is an error naming it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.models import model_plan
from shared.checkpoint import Checkpoint, check_strict
from shared.errors import CheckpointError
from shared.eta import eta_spec
from shared.finetune_config import dppo_settings
from shared.param_spec import critic_obs_spec, diffusion_mlp_spec

_CONSTANT_SUFFIXES = (".logvar_min", ".logvar_max")


def _load_pt(path: str | os.PathLike) -> dict[str, Any]:
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read upstream checkpoint {path}: {exc}") from None
    if not isinstance(payload, dict) or not any(k in payload for k in ("model", "ema")):
        raise CheckpointError(f"{path} is not an upstream DPPO checkpoint (no 'model' or 'ema' entry)")
    return payload


def _numpy(state: dict[str, Any]) -> OrderedDict:
    return OrderedDict((k, v.detach().cpu().numpy().astype(np.float32)) for k, v in state.items()
                       if not k.endswith(_CONSTANT_SUFFIXES))


def import_upstream(path: str | os.PathLike, cfg: dict[str, Any]) -> Checkpoint:
    payload = _load_pt(path)
    plan = model_plan(cfg)
    model_cfg = cfg["model"]
    if "network" in model_cfg:  # pre-training: DiffusionModel
        spec = plan.policy_spec()
        groups = {}
        for group in ("model", "ema"):
            if group in payload:
                groups[group] = _numpy(payload[group])
                check_strict(spec, groups[group], f"upstream {path} [{group}]")
        groups.setdefault("ema", groups.get("model"))
        groups.setdefault("model", groups["ema"])
        meta = {"kind": "pretrain", "epoch": int(payload.get("epoch", 0)), "step": int(payload.get("epoch", 0))}
    else:  # fine-tuning: PPODiffusion (actor, actor_ft, critic)
        state = _numpy(payload.get("model") or payload["ema"])
        base = {k[len("network."):]: v for k, v in state.items() if k.startswith("network.")}
        if not any(k.startswith("actor.") for k in state):
            state.update({f"actor.{k}": v for k, v in base.items()})
        for k, v in base.items():
            if not np.array_equal(state[f"actor.{k}"], v):
                raise CheckpointError(f"upstream {path}: network.{k} and actor.{k} differ; expected one base policy")
        state = OrderedDict((k, v) for k, v in state.items() if not k.startswith("network."))
        net = plan.diffusion.network
        spec = diffusion_mlp_spec(net, "actor.")
        spec.update(diffusion_mlp_spec(net, "actor_ft."))
        if plan.critic is not None:
            spec.update(critic_obs_spec(plan.critic, "critic."))
        if model_cfg.get("eta") is not None:  # upstream keeps eta.* whenever its config names an eta
            spec.update(eta_spec(dppo_settings(cfg).eta))
        check_strict(spec, state, f"upstream {path} [model]")
        groups = {"model": state}
        itr = int(payload.get("itr", 0))
        meta = {"kind": "finetune", "itr": itr, "step": itr, "imported": True}
    meta.update({"framework": "torch-upstream", "config": cfg, "source": str(path)})
    return Checkpoint(groups, meta)
