"""The canonical weights a run starts from, where algorithms share the rule: a fresh initialisation from the
config's seed with base_policy_path's policy loaded over it."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.checkpoints.formats import read_checkpoint
from shared.checkpoint import check_strict
from shared.errors import CheckpointError
from shared.param_spec import CriticObsConfig, torch_default_init
from shared.param_spec.families import network_spec


def dppo_spec(network: Any, critic: CriticObsConfig) -> OrderedDict:
    """Canonical names and shapes of a DPPO model: base actor, actor_ft and critic."""
    spec = network_spec(network, "actor.")
    spec.update(network_spec(network, "actor_ft."))
    spec.update(network_spec(critic, "critic."))  # CriticObs, or an image config's ViTCritic
    return spec


def base_policy_params(path: str, spec: OrderedDict, config: Any) -> OrderedDict:
    """Starting weights for a DPPO agent from `path`.

    A pre-training checkpoint gives its EMA policy (as upstream) to both actor and actor_ft; the
    critic and a DDIM eta keep their fresh initialisation. A fine-tuning checkpoint gives its whole model, as
    upstream restores it: frozen base actor, fine-tuned actor_ft and critic.
    """
    ckpt = read_checkpoint(path, config)
    if ckpt.meta.get("kind") == "finetune":
        weights = ckpt.group("model")
        check_strict(spec, weights, f"base policy {path}")
        return OrderedDict(weights)
    group = "ema" if "ema" in ckpt.groups else "model"
    weights = ckpt.group(group)
    base = OrderedDict((k[len("network."):], v) for k, v in weights.items() if k.startswith("network."))
    if not base:
        raise CheckpointError(f"{path} [{group}] holds no pre-trained diffusion policy (network.* tensors)")
    policy = OrderedDict((f"{p}{k}", v) for p in ("actor.", "actor_ft.") for k, v in base.items())
    check_strict({k: v for k, v in spec.items() if not k.startswith(("critic.", "eta."))}, policy,
                 f"base policy {path}")
    return policy


def target_copy(params: OrderedDict, source: str, target: str) -> OrderedDict:
    """Copies of every `source`* tensor under `target`* (a target network starts as its source: upstream
    deep-copies it), added to `params`; returns params."""
    params.update((target + k[len(source):], np.array(v, copy=True)) for k, v in list(params.items())
                  if k.startswith(source))
    return params


def regression_initial_params(cfg: Any, critic_spec: OrderedDict | None = None) -> OrderedDict:
    """What a run of an algorithm that trains the diffusion policy itself (network.*) starts from: a fresh init
    from cfg.seed (the policy, then `critic_spec`'s critic where given), with base_policy_path's policy loaded
    over it (a pre-training checkpoint's EMA policy, as upstream, or a fine-tuning checkpoint's network.*; a
    checkpoint of the same algorithm gives its critic.* too)."""
    spec = network_spec(cfg.diffusion.network, "network.")
    spec.update(critic_spec or {})
    init = torch_default_init(spec, cfg.seed)
    if not cfg.base_policy_path:  # `dppo finetune` warns; parity wants a fresh policy
        return init
    ckpt = read_checkpoint(cfg.base_policy_path, cfg)
    group = "ema" if "ema" in ckpt.groups else "model"
    weights = OrderedDict((k, v) for k, v in ckpt.group(group).items() if k.startswith("network."))
    if not weights:
        raise CheckpointError(f"{cfg.base_policy_path} [{group}] holds no diffusion policy (network.* tensors)")
    if critic_spec and ckpt.meta.get("algorithm") == cfg.algorithm:
        weights.update((k, v) for k, v in ckpt.group(group).items() if k.startswith("critic."))
    check_strict({k: v for k, v in spec.items() if k in weights or k.startswith("network.")}, weights,
                 f"base policy {cfg.base_policy_path}")
    init.update(weights)
    return init
