"""QSM's part of the fine-tuning loop (dppo/training/finetune.py runs the iterations, evaluation, checkpoints and
resume; dppo/algorithms/replay.py fills the replay buffer), as upstream TrainQSMDiffusionAgent after each training
rollout. The buffer keeps buffer_size policy steps of every env (buffer_size x n_envs transitions);
each iteration runs int(n_steps * n_envs / batch_size * replay_ratio) minibatches, and each minibatch:

1. draws batch_size rows with replacement;
2. critic: next chunks sampled by the current policy at the next observations (stochastic, std floored at
   min_sampling_denoising_std), y = r + gamma * (1 - terminated) * min(Q1', Q2') from the target critic,
   one AdamW step on the sum of both heads' squared errors;
3. actor: a random timestep and noise per row, x_t = q_sample(chunk, t, noise), and the mean squared error
   between -eps_theta(x_t, t, s) and q_grad_coeff * dQ/da at a = x_t (the mean over both heads, a
   constant); the actor's AdamW step (clipped at max_grad_norm) only after n_critic_warmup_itr;
4. the target critic's Polyak step at critic_tau.

Rows, chain noise, timesteps and training noise are numpy draws keyed by (seed, iteration, stream,
minibatch) (shared/algorithms/offpolicy.py), so both frameworks train on the same numbers.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.algorithms.registry import backend_class
from dppo.algorithms.replay import ReplayTrainer, transition_batch
from dppo.algorithms.starting_weights import regression_initial_params, target_copy
from shared.algorithms.offpolicy import TransitionBuffer, minibatch_noise, minibatch_rows, minibatch_timesteps
from shared.param_spec import critic_obs_act_spec, torch_default_init
from shared.param_spec.families import network_spec
from shared.precision import as_compute
from shared.settings.qsm import QSMConfig, QSMSettings

ROWS, CHAIN_NOISE, TIMESTEPS, NOISE = 0, 1, 2, 3  # the draw streams of one minibatch


def initial_params(cfg: QSMConfig) -> OrderedDict:
    """A fresh critic from cfg.seed (drawn after a fresh policy, as AWR's) with its target an exact copy
    (upstream deep-copies it), and the policy regression_initial_params gives (base_policy_path's policy:
    a pre-training checkpoint's EMA network.*; upstream loads nothing else)."""
    spec = network_spec(cfg.diffusion.network, "network.")
    spec.update(critic_obs_act_spec(cfg.critic, "critic."))
    critic = OrderedDict((k, v) for k, v in torch_default_init(spec, cfg.seed).items() if k.startswith("critic."))
    params = regression_initial_params(cfg)
    params.update(critic)
    return target_copy(params, "critic.", "critic_target.")


def build_agent(cfg: QSMConfig, backend: str, init: OrderedDict) -> Any:
    return backend_class(backend, "qsm_diffusion.QSMDiffusionAgent")(cfg.diffusion, cfg.critic, cfg.qsm, init)


def qsm_minibatch(buffer: TransitionBuffer, s: QSMSettings, seed: int, itr: int, k: int) -> dict[str, np.ndarray]:
    """Minibatch k of iteration itr: its buffer rows and every random number its update uses (compute dtype)."""
    b = transition_batch(buffer, minibatch_rows(seed, itr, ROWS, k, len(buffer), s.batch_size))
    B, chunk = s.batch_size, b["actions"].shape[1:]
    return {**b,
            "chain_noise": as_compute(minibatch_noise(seed, itr, CHAIN_NOISE, k, (s.denoising_steps + 1, B, *chunk))),
            "t": minibatch_timesteps(seed, itr, TIMESTEPS, k, B, s.denoising_steps),
            "noise": as_compute(minibatch_noise(seed, itr, NOISE, k, (B, *chunk)))}


class QSMTrainer(ReplayTrainer):
    """QSM for dppo.training.finetune.run_iterations."""

    algorithm = "qsm"
    minibatch = staticmethod(qsm_minibatch)


Trainer = QSMTrainer
