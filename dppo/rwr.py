"""RWR's part of the fine-tuning loop (dppo/finetune.py runs the iterations, evaluation, checkpoints and
resume): after each training rollout, reward-weighted denoising regression on the rollout's own action
chunks (upstream TrainRWRDiffusionAgent).

The rows and their weights come from shared/rwr.py. Minibatch order, diffusion timesteps and training
noise are drawn in numpy keyed by (seed, iteration, epoch[, minibatch]), so both frameworks train on the
same numbers and a resumed run on the same as an uninterrupted one. An iteration in which no episode
finished has no rows; it makes no update (upstream would reuse the previous iteration's rows, or fail on
the first), and its record says `num_rwr_rows: 0`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from shared.checkpoint import Checkpoint
from shared.errors import TrainingDivergedError
from shared.precision import as_compute
from shared.rwr import rwr_batch
from shared.settings import RWRConfig, RWRSettings


def rwr_minibatch_noise(seed: int, itr: int, epoch: int, batch: int, rows: int, denoising_steps: int,
                        chunk: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(t (rows,) int64, noise (rows, Ta, Da)) for one minibatch: upstream's torch.randint and
    torch.randn_like in DiffusionModel.loss, drawn here in numpy (float32 values, in the compute dtype)."""
    rng = np.random.default_rng([seed, itr, epoch, batch, 6])
    t = rng.integers(0, denoising_steps, rows).astype(np.int64)
    return t, as_compute(rng.standard_normal((rows, *chunk)).astype(np.float32))


def rwr_update(agent: Any, data: dict[str, np.ndarray], s: RWRSettings, denoising_steps: int, seed: int,
               itr: int) -> dict[str, float]:
    """update_epochs over shuffled minibatches of the rows (the remainder skipped, as upstream)."""
    total = len(data["weights"])
    num_batches = max(1, total // s.batch_size)
    chunk = data["actions"].shape[1:]
    losses = []
    for epoch in range(s.update_epochs):
        order = np.random.default_rng([seed, itr, epoch, 3]).permutation(total)
        for b in range(num_batches):
            rows = order[b * s.batch_size:(b + 1) * s.batch_size]
            t, noise = rwr_minibatch_noise(seed, itr, epoch, b, len(rows), denoising_steps, chunk)
            batch = {"obs": data["obs"][rows], "actions": data["actions"][rows], "weights": data["weights"][rows],
                     "t": t, "noise": noise}
            loss = agent.update(batch)["loss"]
            if not math.isfinite(loss):
                raise TrainingDivergedError(f"non-finite RWR loss at iteration {itr}, epoch {epoch}, batch {b}")
            losses.append(loss)
    return {"loss": float(np.mean(losses))}


class RWRTrainer:
    """RWR for dppo.finetune.run_iterations (see PPOTrainer there for what a trainer provides)."""

    algorithm = "rwr"
    optimizer_group = "optimizer"

    def __init__(self, cfg: RWRConfig, backend: str) -> None:
        from dppo.agents import make_agent

        self.cfg, self.settings = cfg, cfg.rwr
        self.agent = make_agent(cfg, backend)

    def noise_shape(self, n: int) -> tuple[int, ...]:
        from dppo.agents import noise_shape

        return noise_shape(self.cfg, n)

    def restore(self, ckpt: Checkpoint, done_itr: int) -> None:
        self.agent.load_groups(ckpt.groups, done_itr + 1)  # the schedule steps once per iteration

    def learning_rates(self) -> dict[str, float]:
        return {"lr": self.agent.lr}

    def train(self, ro: dict[str, Any], itr: int, seed: int) -> dict[str, float]:
        s = self.settings
        data = rwr_batch(ro["obs"], ro["samples"]["actions"], ro["rewards"], ro["first"], s.gamma, s.beta,
                         s.max_reward_weight)
        if data is None:
            return {"num_rwr_rows": 0}
        record = rwr_update(self.agent, data, s, self.cfg.diffusion.denoising_steps, seed, itr)
        record.update(num_rwr_rows=len(data["weights"]), mean_weight=float(np.mean(data["weights"])),
                      max_weight=float(np.max(data["weights"])))
        return record

    def end_iteration(self, itr: int) -> None:
        self.agent.end_iteration()

    def state_groups(self) -> dict[str, Any]:
        return self.agent.state_groups()
