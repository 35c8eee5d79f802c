"""Import PyTorch checkpoints written by upstream irom-lab/dppo into the canonical format.

Upstream saves `state_<n>.pt` as {"epoch" or "itr", "model": state_dict, "ema": state_dict}.
Our canonical names are upstream's state_dict keys, so the mapping is mostly identity:

| upstream key (state_dict)               | canonical group / name                  |
| --------------------------------------- | --------------------------------------- |
| pre-training `model` / `ema`: network.* | `model` / `ema`: network.*              |
| (DiffusionModel or GaussianModel)       |                                         |
| fine-tuning `model`: actor.*            | `model`: actor.* (frozen base policy)   |
| fine-tuning `model`: actor_ft.*         | `model`: actor_ft.*                     |
| fine-tuning `model`: critic.*           | `model`: critic.*                       |
| fine-tuning `model`: eta.* (model.eta)  | `model`: eta.* (DDIM eta: logit or MLP) |
| fine-tuning `model`: network.*          | dropped: the same tensors as actor.*    |
| Gaussian PPO `model`: actor_ft.*        | `model`: actor.* (the trained policy)   |
| Gaussian PPO `model`: critic.*          | `model`: critic.*                       |
| Gaussian PPO `model`: network.*, actor.*| dropped: actor_ft.* again, and its      |
|                                         | frozen starting copy                    |
| PPO_GMM `model`: actor_ft.*, critic.*   | as Gaussian PPO's (network.* dropped)   |
| GMMModel (a PPO_GMM config's base)      | `model` / `ema`: network.* (a learned   |
|                                         | fixed std the pre-training fixed absent)|

A fine-tuning checkpoint without actor.* takes its base policy from network.*. Keys that hold no
learned state in upstream (Gaussian_MLP's logvar_min / logvar_max constants) are dropped; any
other extra, missing or wrongly shaped tensor is an error naming it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from shared.checkpoint import Checkpoint, check_strict
from shared.diffusion.eta import eta_spec
from shared.errors import CheckpointError
from shared.param_spec.families import network_spec
from shared.settings import EvalConfig, FinetuneConfig, GaussianPretrainConfig, GMMFinetuneConfig, PretrainConfig

_CONSTANT_SUFFIXES = (".logvar_min", ".logvar_max")


def _load_pt(path: str | os.PathLike) -> dict[str, Any]:
    """An upstream state_<n>.pt: {'model' and/or 'ema': state_dict, ...}, state_dicts as numpy arrays."""
    from core_torch.runtime.checkpoint import load_torch_file, tensor_group

    payload = load_torch_file(path, "upstream checkpoint")
    if not isinstance(payload, dict) or not any(k in payload for k in ("model", "ema")):
        raise CheckpointError(f"{path} is not an upstream DPPO checkpoint (no 'model' or 'ema' entry)")
    for key in ("epoch", "itr"):
        if key in payload and (isinstance(payload[key], bool) or not isinstance(payload[key], int)):
            raise CheckpointError(f"{path}: '{key}' must be an integer, got {payload[key]!r}")
    return {k: tensor_group(payload, k, path) if k in ("model", "ema") else v for k, v in payload.items()}


def _numpy(state: dict[str, Any]) -> OrderedDict:
    return OrderedDict((k, v.astype(np.float32)) for k, v in state.items() if not k.endswith(_CONSTANT_SUFFIXES))


def is_upstream_checkpoint(path: str | os.PathLike) -> bool:
    """True for a torch file in upstream's layout ({'model'/'ema': state_dict, 'epoch'/'itr'}, no 'meta')."""
    if Path(path).suffix not in (".pt", ".pth") or not Path(path).is_file():
        return False
    from core_torch.runtime.checkpoint import load_torch_file

    try:
        payload = load_torch_file(path)
    except CheckpointError:
        return False
    return isinstance(payload, dict) and "meta" not in payload and any(k in payload for k in ("model", "ema"))


def _same_tensors(state: OrderedDict, source: str, copy: str, path: str | os.PathLike) -> None:
    for k, v in state.items():
        if k.startswith(f"{copy}.") and not np.array_equal(state.get(f"{source}.{k[len(copy) + 1:]}"), v):
            raise CheckpointError(f"upstream {path}: {k} and {source}.{k[len(copy) + 1:]} differ; "
                                  "expected the same tensors")


def import_upstream(path: str | os.PathLike,
                    cfg: PretrainConfig | GaussianPretrainConfig | FinetuneConfig | EvalConfig) -> Checkpoint:
    """An upstream state_<n>.pt as a canonical checkpoint, checked tensor by tensor against cfg."""
    payload = _load_pt(path)
    pretrained = "ema" in payload  # upstream's pre-training state: {"epoch", "model", "ema"}
    gmm_base = isinstance(cfg, GMMFinetuneConfig) and pretrained  # a PPO_GMM config's pre-trained GMMModel
    if isinstance(cfg, FinetuneConfig) and not cfg.is_diffusion and not gmm_base:  # PPO_Gaussian or PPO_GMM
        state = _numpy(payload.get("model") or payload["ema"])
        if not any(k.startswith("actor_ft.") for k in state):
            raise CheckpointError(f"upstream {path} holds no Gaussian PPO policy (actor_ft.* tensors)")
        _same_tensors(state, "actor_ft", "network", path)
        # upstream: network.* is actor_ft.* (the trained policy), actor.* its frozen starting copy
        state = OrderedDict((f"actor.{k[len('actor_ft.'):]}" if k.startswith("actor_ft.") else k, v)
                            for k, v in state.items() if not k.startswith(("network.", "actor.")))
        spec = network_spec(cfg.gaussian_actor, "actor.")
        spec.update(network_spec(cfg.critic, "critic."))
        check_strict(spec, state, f"upstream {path} [model]")
        itr = int(payload.get("itr", 0))
        meta = {"kind": "finetune", "itr": itr, "step": itr, "imported": True}
    elif isinstance(cfg, FinetuneConfig) and not pretrained:  # DPPO: PPODiffusion (actor, actor_ft, critic)
        state = _numpy(payload.get("model") or payload["ema"])
        if not any(k.startswith("actor.") for k in state):  # the base policy only as network.*
            state.update({f"actor.{k[len('network.'):]}": v for k, v in state.items() if k.startswith("network.")})
        _same_tensors(state, "actor", "network", path)
        state = OrderedDict((k, v) for k, v in state.items() if not k.startswith("network."))
        net = cfg.diffusion.network
        spec = network_spec(net, "actor.")
        spec.update(network_spec(net, "actor_ft."))
        spec.update(network_spec(cfg.critic, "critic."))
        if cfg.dppo.eta is not None:  # upstream keeps eta.* whenever its config names an eta
            spec.update(eta_spec(cfg.dppo.eta))
        check_strict(spec, state, f"upstream {path} [model]")
        itr = int(payload.get("itr", 0))
        meta = {"kind": "finetune", "itr": itr, "step": itr, "imported": True}
    else:  # pre-training: DiffusionModel or GaussianModel (also a DPPO config's base policy, an eval config's policy)
        gaussian = isinstance(cfg, GaussianPretrainConfig) or (isinstance(cfg, EvalConfig) and not cfg.is_diffusion)
        if gaussian and isinstance(cfg, EvalConfig) and not pretrained:
            raise CheckpointError(f"{path}: an upstream Gaussian PPO policy is imported with its PPO config "
                                  "(ppo_gaussian_mlp.yaml), not an eval config")
        if gaussian:
            spec = network_spec(cfg.model.network, "network.")
        elif gmm_base:  # a learned fixed std the pre-training fixed is not in it (upstream's load is not strict)
            spec = network_spec(cfg.gmm_actor, "network.")
            if "network.logvar" not in (payload.get("model") or payload["ema"]):
                spec.pop("network.logvar", None)
        else:  # the policy's network: a pre-training or eval config's model.network; a fine-tuning config's policy
            network = cfg.model.network if isinstance(cfg, (PretrainConfig, EvalConfig)) else cfg.diffusion.network
            spec = network_spec(network, "network.")
        groups = {}
        for group in ("model", "ema"):
            if group in payload:
                groups[group] = _numpy(payload[group])
                check_strict(spec, groups[group], f"upstream {path} [{group}]")
        groups.setdefault("ema", groups.get("model"))
        groups.setdefault("model", groups["ema"])
        epoch = int(payload.get("epoch", 0))
        meta = {"kind": "pretrain", "epoch": epoch, "step": epoch}
        meta.update({"framework": "torch-upstream", "config": cfg.raw, "source": str(path)})
        return Checkpoint(groups, meta)
    meta.update({"framework": "torch-upstream", "config": cfg.raw, "source": str(path)})
    return Checkpoint({"model": state}, meta)
