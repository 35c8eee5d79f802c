"""PPO fine-tuning of a GMM policy (upstream PPO_GMM, run by its TrainPPOGaussianAgent): Gaussian PPO's loop,
scoring, GAE and minibatch updates (dppo/algorithms/ppo.py) with the PPOGMMAgent twins. The driver of the
`ppo_gmm` entry of shared/settings/algorithms.py.

Starting weights: a fresh init from cfg.seed, then base_policy_path's policy. A pre-training checkpoint gives its
`model` group's network (upstream's GMMModel loads checkpoint["model"], not the EMA) to the actor; a learned fixed
std the pre-training did not have (upstream's pre_gmm configs fix the std) keeps its start at log(fixed_std^2), as
upstream's non-strict load leaves it. A PPO_GMM checkpoint gives its actor and critic.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from dppo.algorithms import ppo
from dppo.algorithms.registry import backend_class
from dppo.checkpoints.formats import read_checkpoint
from shared.algorithms.gmm import step_noise_shape as gmm_step_noise_shape
from shared.checkpoint import check_strict
from shared.errors import CheckpointError
from shared.param_spec import critic_obs_spec, torch_default_init
from shared.param_spec.families import family_init_over, network_spec
from shared.settings.gmm import GMMFinetuneConfig


def _free_parameter_overrides(cfg: GMMFinetuneConfig) -> dict[str, float]:
    """A learned fixed std starts at log(fixed_std^2) (every gmm-role family's upstream class does so)."""
    actor = cfg.gmm_actor
    if actor.fixed_std is not None and actor.learn_fixed_std:
        return {"actor.logvar": math.log(actor.fixed_std**2)}
    return {}


def initial_params(cfg: GMMFinetuneConfig) -> OrderedDict:
    spec = network_spec(cfg.gmm_actor, "actor.")
    spec.update(critic_obs_spec(cfg.critic, "critic."))
    overrides = _free_parameter_overrides(cfg)
    init = family_init_over(torch_default_init(spec, cfg.seed, overrides), cfg.gmm_actor, cfg.seed, "actor.", overrides)
    if not cfg.base_policy_path:  # a fresh policy (`dppo finetune` warns; parity and bench want it)
        return init
    path = cfg.base_policy_path
    ckpt = read_checkpoint(path, cfg)
    model = ckpt.group("model")
    if ckpt.meta.get("kind") == "finetune":
        check_strict(spec, model, f"base policy {path}")
        init.update(model)
        return init
    policy = OrderedDict((f"actor.{k[len('network.'):]}", v) for k, v in model.items() if k.startswith("network."))
    if not policy:
        raise CheckpointError(f"{path} [model] holds no pre-trained GMM policy (network.* tensors)")
    expected = {k: v for k, v in spec.items() if k.startswith("actor.")}
    if "actor.logvar" not in policy:  # a fixed-std pre-training: the learned std starts fresh
        expected.pop("actor.logvar", None)
    check_strict(expected, policy, f"base policy {path}")
    init.update(policy)
    return init


def build_agent(cfg: GMMFinetuneConfig, backend: str, init: OrderedDict) -> Any:
    return backend_class(backend, "ppo_gmm.PPOGMMAgent")(cfg.gmm_actor, cfg.critic, cfg.ppo, init)


def step_noise_shape(cfg: GMMFinetuneConfig, n: int) -> tuple[int, ...]:
    """(n, Ta*Da + 1): each row's chunk noise and the normal that picks its mode (shared/algorithms/gmm.py)."""
    return gmm_step_noise_shape(n, cfg.horizon_steps * cfg.action_dim)


class PPOGMMTrainer(ppo.PPOTrainer):
    """Gaussian PPO's part of the loop (score, GAE, minibatch updates) on the PPOGMMAgent."""

    algorithm = "ppo_gmm"

    def __init__(self, cfg: GMMFinetuneConfig, backend: str) -> None:  # noqa: D107 (ppo.PPOTrainer's fields)
        self.cfg, self.settings = cfg, cfg.ppo
        self.agent = build_agent(cfg, backend, initial_params(cfg))
        self.scaler = ppo.make_reward_scaler(self.settings)
        self.bc_shape = None  # PPO_GMM has no BC term


Trainer = PPOGMMTrainer
parity_quantities = ppo.parity_quantities  # `dppo parity`: acting, scoring and PPO updates of whole agents
