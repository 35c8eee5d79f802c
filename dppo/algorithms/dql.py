"""DQL's part of the fine-tuning loop (dppo/training/finetune.py runs the iterations, evaluation, checkpoints and
resume; dppo/algorithms/replay.py fills the replay buffer from each training rollout), as upstream
TrainDQLDiffusionAgent after a training rollout: minibatches = int(n_steps * n_envs / batch_size *
replay_ratio), each one

1. rows drawn uniformly with replacement from the buffer (upstream's np.random.choice);
2. critic: a' sampled by the current policy (exploration std floor, no gradient), targets
   r + gamma * (1 - terminated) * min(Q1', Q2')(s', a') from the target critic, one AdamW step;
3. actor: denoising loss of a chunk sampled with gradients plus eta times the normalised -Q of one head
   (a coin flip), on the just-updated critic; the actor steps only from n_critic_warmup_itr on;
4. target critic <- Polyak average with rate target_ema_rate.

Every random number (rows, both chains' noise, timesteps, training noise, the coin) is drawn in numpy by
shared/algorithms/offpolicy.py keyed by (seed, iteration, stream, minibatch), so both frameworks train on the
same numbers and a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.algorithms.registry import backend_class
from dppo.algorithms.replay import ReplayTrainer, transition_batch
from dppo.algorithms.starting_weights import regression_initial_params, target_copy
from shared.algorithms.offpolicy import (
    TransitionBuffer,
    minibatch_noise,
    minibatch_rows,
    minibatch_timesteps,
    minibatch_uniform,
)
from shared.param_spec import critic_obs_act_spec, torch_default_init
from shared.precision import as_compute
from shared.settings.dql import DQLConfig, DQLSettings

# One stream per draw a minibatch makes.
ROWS, NEXT_CHAIN, ACTOR_CHAIN, TIMESTEPS, TRAIN_NOISE, COIN = range(6)


def initial_params(cfg: DQLConfig) -> OrderedDict:
    """DQL starts as RWR does (base_policy_path's policy over a fresh init from cfg.seed) with a fresh double-Q
    critic (from cfg.seed + 1) and its target, a copy of it (upstream deep-copies the critic)."""
    init = regression_initial_params(cfg)
    init.update(torch_default_init(critic_obs_act_spec(cfg.critic, "critic."), cfg.seed + 1))
    return target_copy(init, "critic.", "critic_target.")


def build_agent(cfg: DQLConfig, backend: str, init: OrderedDict) -> Any:
    return backend_class(backend, "dql_diffusion.DQLDiffusionAgent")(cfg.diffusion, cfg.critic, cfg.dql, init)


def minibatch(buffer: TransitionBuffer, s: DQLSettings, seed: int, itr: int, k: int) -> dict[str, np.ndarray]:
    """Minibatch k of iteration itr: its transitions and every random number its update uses."""
    batch = transition_batch(buffer, minibatch_rows(seed, itr, ROWS, k, len(buffer), s.batch_size))
    B, (Ta, Da) = s.batch_size, batch["actions"].shape[1:]
    chain = (s.denoising_steps + 1, B, Ta, Da)
    return {**batch,
            "next_noise": as_compute(minibatch_noise(seed, itr, NEXT_CHAIN, k, chain)),
            "chain_noise": as_compute(minibatch_noise(seed, itr, ACTOR_CHAIN, k, chain)),
            "t": minibatch_timesteps(seed, itr, TIMESTEPS, k, B, s.denoising_steps),
            "noise": as_compute(minibatch_noise(seed, itr, TRAIN_NOISE, k, (B, Ta, Da))),
            "q1_head": as_compute(np.array(minibatch_uniform(seed, itr, COIN, k) > 0.5, np.float32))}


class DQLTrainer(ReplayTrainer):
    """DQL for dppo.training.finetune.run_iterations."""

    algorithm = "dql"
    minibatch = staticmethod(minibatch)


Trainer = DQLTrainer
