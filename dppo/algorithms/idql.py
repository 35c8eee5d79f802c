"""IDQL's part of the fine-tuning loop (dppo/training/finetune.py runs the iterations, evaluation, checkpoints and
resume; dppo/algorithms/replay.py fills the buffer), as upstream TrainIDQLDiffusionAgent after each training rollout:

1. the rollout's policy steps go into the buffer (capacity buffer_size policy steps of all envs, that is
   buffer_size x n_envs transitions; rewards times scale_reward_factor; evaluation rollouts are not stored);
2. n_steps * n_envs / batch_size * replay_ratio minibatches, rows drawn uniformly with replacement, each:
   a V step on the expectile loss of min(target Q) - V, a Q step towards r + gamma * (1 - terminated) * V(s'),
   the Polyak update of the target Q (critic_tau), then the plain denoising loss of the buffered chunks at
   random timesteps, whose AdamW step is taken only from iteration n_critic_warmup_itr on.

Rows, timesteps and training noise are numpy draws keyed by (seed, iteration, stream, minibatch), so both
frameworks train on the same numbers and a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.algorithms.registry import backend_class
from dppo.algorithms.replay import ReplayTrainer, transition_batch
from dppo.algorithms.starting_weights import target_copy
from dppo.checkpoints.formats import read_checkpoint
from shared.algorithms.idql import noise_shape as idql_noise_shape
from shared.algorithms.offpolicy import TransitionBuffer, minibatch_noise, minibatch_rows, minibatch_timesteps
from shared.checkpoint import check_strict
from shared.errors import CheckpointError
from shared.param_spec import critic_obs_act_spec, critic_obs_spec, torch_default_init
from shared.param_spec.families import network_spec
from shared.precision import as_compute
from shared.settings.idql import IDQLConfig, IDQLSettings

ROWS, TIMESTEPS, NOISE = 0, 1, 2  # the draws' streams


def idql_minibatch(buffer: TransitionBuffer, s: IDQLSettings, seed: int, itr: int, k: int) -> dict[str, np.ndarray]:
    """Minibatch k of iteration itr: buffered transitions at drawn rows (float32, in the compute dtype),
    denoising timesteps and training noise for the actor's loss."""
    batch = transition_batch(buffer, minibatch_rows(seed, itr, ROWS, k, len(buffer), s.batch_size))
    batch["noise"] = as_compute(minibatch_noise(seed, itr, NOISE, k, (s.batch_size, *batch["actions"].shape[1:])))
    batch["t"] = minibatch_timesteps(seed, itr, TIMESTEPS, k, s.batch_size, s.denoising_steps)
    return batch


def initial_params(cfg: IDQLConfig) -> OrderedDict:
    """What an IDQL run starts from: a fresh init from cfg.seed (policy, critic_q, critic_v), base_policy_path's
    policy loaded over it (a pre-training checkpoint's EMA policy, as upstream, or a fine-tuning checkpoint's
    network.*; an IDQL checkpoint's critics too), and critic_q_target a copy of critic_q (upstream deep-copies)."""
    spec = network_spec(cfg.diffusion.network, "network.")
    spec.update(critic_obs_act_spec(cfg.critic_q, "critic_q."))
    spec.update(critic_obs_spec(cfg.critic_v, "critic_v."))
    spec.update(critic_obs_act_spec(cfg.critic_q, "critic_q_target."))
    init = target_copy(torch_default_init(spec, cfg.seed), "critic_q.", "critic_q_target.")
    if not cfg.base_policy_path:  # `dppo finetune` warns; parity wants a fresh policy
        return init
    ckpt = read_checkpoint(cfg.base_policy_path, cfg)
    group = "ema" if "ema" in ckpt.groups else "model"
    prefixes = ("network.", "critic_q.", "critic_v.", "critic_q_target.") if ckpt.meta.get(
        "algorithm") == "idql" else ("network.",)
    weights = OrderedDict((k, v) for k, v in ckpt.group(group).items() if k.startswith(prefixes))
    if not any(k.startswith("network.") for k in weights):
        raise CheckpointError(f"{cfg.base_policy_path} [{group}] holds no diffusion policy (network.* tensors)")
    check_strict({k: v for k, v in spec.items() if k.startswith(prefixes)}, weights,
                 f"base policy {cfg.base_policy_path}")
    init.update(weights)
    return init


def build_agent(cfg: IDQLConfig, backend: str, init: OrderedDict) -> Any:
    return backend_class(backend, "idql_diffusion.IDQLDiffusionAgent")(cfg.diffusion, cfg.critic_q, cfg.critic_v,
                                                                      cfg.idql, init)


def step_noise_shape(cfg: IDQLConfig, n: int) -> tuple[int, ...]:
    """S candidate chains per observation and the choice's normals (shared/algorithms/idql.py)."""
    return idql_noise_shape(cfg.diffusion.denoising_steps, cfg.idql.num_sample, n, cfg.horizon_steps, cfg.action_dim)


class IDQLTrainer(ReplayTrainer):
    """IDQL for dppo.training.finetune.run_iterations."""

    algorithm = "idql"
    minibatch = staticmethod(idql_minibatch)


Trainer = IDQLTrainer
