"""IDQL's part of the fine-tuning loop (dppo/finetune.py runs the iterations, evaluation, checkpoints and
resume; dppo/replay.py fills the buffer), as upstream TrainIDQLDiffusionAgent after each training rollout:

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

from typing import Any

import numpy as np

from dppo.replay import ReplayTrainer, mean_losses, transition_batch
from shared.offpolicy import TransitionBuffer, minibatch_noise, minibatch_rows, minibatch_timesteps
from shared.precision import as_compute
from shared.settings import IDQLConfig, IDQLSettings

ROWS, TIMESTEPS, NOISE = 0, 1, 2  # the draws' streams


def idql_minibatch(buffer: TransitionBuffer, s: IDQLSettings, seed: int, itr: int, k: int) -> dict[str, np.ndarray]:
    """Minibatch k of iteration itr: buffered transitions at drawn rows (float32, in the compute dtype),
    denoising timesteps and training noise for the actor's loss."""
    batch = transition_batch(buffer, minibatch_rows(seed, itr, ROWS, k, len(buffer), s.batch_size))
    batch["noise"] = as_compute(minibatch_noise(seed, itr, NOISE, k, (s.batch_size, *batch["actions"].shape[1:])))
    batch["t"] = minibatch_timesteps(seed, itr, TIMESTEPS, k, s.batch_size, s.denoising_steps)
    return batch


def idql_update(agent: Any, buffer: TransitionBuffer, s: IDQLSettings, seed: int, itr: int) -> dict[str, float]:
    """The iteration's minibatch updates (see the module docstring); mean losses."""
    step_actor = itr >= s.n_critic_warmup_itr
    logs: dict[str, list[float]] = {}
    for k in range(s.minibatches):
        for name, value in agent.update(idql_minibatch(buffer, s, seed, itr, k), step_actor).items():
            logs.setdefault(name, []).append(value)
    return mean_losses(logs, "IDQL", itr)


class IDQLTrainer(ReplayTrainer):
    """IDQL for dppo.finetune.run_iterations."""

    algorithm = "idql"

    def __init__(self, cfg: IDQLConfig, backend: str) -> None:
        self.settings = cfg.idql
        super().__init__(cfg, backend)

    def update(self, itr: int, seed: int) -> dict[str, float]:
        return idql_update(self.agent, self.buffer, self.settings, seed, itr)
