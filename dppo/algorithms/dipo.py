"""DIPO's part of the fine-tuning loop (dppo/algorithms/replay.py fills the buffer, dppo/training/finetune.py runs the
iterations, evaluation, checkpoints and resume), as upstream TrainDIPODiffusionAgent after each
training rollout, for each of its int(n_steps * n_envs / batch_size * replay_ratio) minibatches:

1. critic: rows drawn with replacement; double-Q TD loss against r + gamma * (1 - terminated) *
   min(Q1', Q2') of the target critic at next actions the target actor samples; one AdamW step;
2. from iteration n_critic_warmup_itr on, actor: a second row draw; its action chunks moved uphill on
   min(Q1, Q2) by action_gradient_steps Adam steps (a fresh Adam each minibatch) and written back into
   the buffer at once, so later minibatches of the same iteration (critic and actor draws) read the
   moved chunks, and a row drawn twice in one minibatch keeps its last copy (upstream assigns into its
   numpy copy of the buffer by fancy indexing, which it turns back into the buffer at the end of the
   iteration); then one AdamW step of the plain denoising loss on the moved chunks;
3. Polyak updates of the target critic and the target actor (warm-up included).

Rows, the next actions' chain noise, timesteps and training noise come from shared/algorithms/offpolicy.py's
seeded draws, so both frameworks see the same minibatches and a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.algorithms.registry import backend_class
from dppo.algorithms.replay import ReplayTrainer, mean_losses, transition_batch
from dppo.algorithms.starting_weights import regression_initial_params, target_copy
from shared.algorithms.offpolicy import TransitionBuffer, minibatch_noise, minibatch_rows, minibatch_timesteps
from shared.param_spec import critic_obs_act_spec, torch_default_init
from shared.precision import as_compute
from shared.settings.dipo import DIPOConfig, DIPOSettings

# Draw streams of one minibatch (shared/algorithms/offpolicy.py).
CRITIC_ROWS, NEXT_ACTION_NOISE, ACTOR_ROWS, ACTOR_T, ACTOR_NOISE = range(5)


def last_copies(rows: np.ndarray) -> np.ndarray:
    """Positions in `rows` whose row index does not occur again later (numpy's fancy assignment
    a[rows] = x leaves each row with its last copy: written out here rather than relied on)."""
    reversed_first = np.unique(rows[::-1], return_index=True)[1]
    return np.sort(len(rows) - 1 - reversed_first)


def critic_batch(buffer: TransitionBuffer, s: DIPOSettings, seed: int, itr: int, k: int) -> dict[str, np.ndarray]:
    batch = transition_batch(buffer, minibatch_rows(seed, itr, CRITIC_ROWS, k, len(buffer), s.batch_size))
    chain = (s.denoising_steps + 1, *batch["actions"].shape)  # (S+1, B, Ta, Da)
    return {**batch, "next_noise": as_compute(minibatch_noise(seed, itr, NEXT_ACTION_NOISE, k, chain))}


def actor_batch(buffer: TransitionBuffer, s: DIPOSettings, seed: int, itr: int, k: int
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rows = minibatch_rows(seed, itr, ACTOR_ROWS, k, len(buffer), s.batch_size)
    d = buffer.rows(rows)
    return rows, {"obs": as_compute(d["obs"]), "actions": as_compute(d["actions"]),
                  "t": minibatch_timesteps(seed, itr, ACTOR_T, k, len(rows), s.denoising_steps),
                  "noise": as_compute(minibatch_noise(seed, itr, ACTOR_NOISE, k, d["actions"].shape))}


def dipo_update(agent: Any, buffer: TransitionBuffer, s: DIPOSettings, seed: int, itr: int) -> dict[str, float]:
    """The iteration's minibatches (see the module docstring); improved chunks go back into `buffer`."""
    logs: dict[str, list[float]] = {"critic_loss": [], "actor_loss": []}
    train_actor = itr >= s.n_critic_warmup_itr
    for k in range(s.minibatches):
        cb = critic_batch(buffer, s, seed, itr, k)
        rows, ab = actor_batch(buffer, s, seed, itr, k) if train_actor else (None, None)
        losses, improved = agent.update(cb, ab)
        for name, value in losses.items():
            logs[name].append(value)
        if improved is not None:
            keep = last_copies(rows)
            buffer.set_actions(rows[keep], improved[keep])
    return mean_losses(logs, "DIPO", itr)


def initial_params(cfg: DIPOConfig) -> OrderedDict:
    """DIPO starts as RWR does (base_policy_path's policy over a fresh init from cfg.seed) with a fresh
    double-Q critic (from cfg.seed + 1); the target actor and target critic are copies of them (upstream
    deep-copies both after loading the base policy)."""
    init = regression_initial_params(cfg)
    init.update(torch_default_init(critic_obs_act_spec(cfg.critic, "critic."), cfg.seed + 1))
    return target_copy(target_copy(init, "network.", "actor_target."), "critic.", "critic_target.")


def build_agent(cfg: DIPOConfig, backend: str, init: OrderedDict) -> Any:
    return backend_class(backend, "dipo_diffusion.DIPODiffusionAgent")(cfg.diffusion, cfg.critic, cfg.dipo, init)


class DIPOTrainer(ReplayTrainer):
    """DIPO for dppo.training.finetune.run_iterations."""

    algorithm = "dipo"

    def update(self, itr: int, seed: int) -> dict[str, float]:
        return dipo_update(self.agent, self.buffer, self.settings, seed, itr)


Trainer = DIPOTrainer
