"""AWR's part of the fine-tuning loop (dppo/finetune.py runs the iterations, evaluation, checkpoints and
resume), as upstream TrainAWRDiffusionAgent after each training rollout:

1. append the rollout's steps to the replay buffer (observations, executed chunks, rewards times
   scale_reward_factor, terminated flags; evaluation rollouts are not stored);
2. critic: TD(lambda) targets from the current critic's values over the whole buffer, then
   actor_batches // critic_update_ratio AdamW steps on minibatches drawn with replacement;
3. actor: targets and values again from the updated critic, advantages = targets - values, then
   actor_batches steps of the denoising regression weighted by min(exp(beta * a), max_adv_weight),
   a normalised per minibatch; the actor's optimizer steps only after n_critic_warmup_itr.

Minibatch rows, timesteps and training noise are drawn in numpy keyed by (seed, iteration, kind, k),
so both frameworks see the same minibatches; checkpoints carry the buffer (`replay_buffer` group),
so a resumed run loses nothing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from shared.awr import ReplayBuffer, advantage_weights, minibatch_rows, td_lambda_targets
from shared.checkpoint import Checkpoint
from shared.errors import CheckpointError, TrainingDivergedError
from shared.precision import as_compute
from shared.settings import AWRConfig, AWRSettings


def buffer_values(agent: Any, obs: np.ndarray, chunk: int = 10000) -> np.ndarray:
    """The critic's values (S, N) of the buffer's observations (S, N, To, Do), in blocks of `chunk` rows."""
    S, N = obs.shape[:2]
    flat = as_compute(obs.reshape(S * N, *obs.shape[2:]))
    return np.concatenate([agent.values(flat[i:i + chunk]) for i in range(0, S * N, chunk)]).reshape(S, N)


def awr_update(agent: Any, buffer: ReplayBuffer, s: AWRSettings, denoising_steps: int, seed: int,
               itr: int) -> dict[str, float]:
    """Critic then actor minibatches on the buffer (see the module docstring)."""
    d = buffer.data
    S, N = d["rewards"].shape
    batches = s.actor_batches
    values = buffer_values(agent, d["obs"])
    targets = td_lambda_targets(d["rewards"], d["terminated"], values, s.td_gamma).reshape(-1)
    flat_obs = as_compute(d["obs"].reshape(S * N, *d["obs"].shape[2:]))
    critic_rows = S if s.critic_rows_first_steps else S * N  # upstream draws among the first S rows only
    critic_losses = []
    for k in range(batches // s.critic_update_ratio):
        rows = minibatch_rows(seed, itr, 0, k, critic_rows, s.batch_size)
        critic_losses.append(agent.update_critic({"obs": flat_obs[rows], "targets": as_compute(targets[rows])})
                             ["critic_loss"])
    values = buffer_values(agent, d["obs"])
    advantages = (td_lambda_targets(d["rewards"], d["terminated"], values, s.td_gamma) - values).reshape(-1)
    actions = as_compute(d["actions"].reshape(S * N, *d["actions"].shape[2:]))
    step_actor = itr >= s.n_critic_warmup_itr
    actor_losses, weights = [], []
    for k in range(batches):
        rows = minibatch_rows(seed, itr, 1, k, S * N, s.batch_size)
        w = advantage_weights(advantages[rows], s.beta, s.max_adv_weight)
        rng = np.random.default_rng([seed, itr, 1, k, 9])
        t = rng.integers(0, denoising_steps, len(rows)).astype(np.int64)
        noise = as_compute(rng.standard_normal((len(rows), *actions.shape[1:])).astype(np.float32))
        actor_losses.append(agent.update_actor({"obs": flat_obs[rows], "actions": actions[rows],
                                                "weights": as_compute(w), "t": t, "noise": noise},
                                               step_actor)["actor_loss"])
        weights.append(w)
    if not all(math.isfinite(v) for v in critic_losses + actor_losses):
        raise TrainingDivergedError(f"non-finite AWR loss at iteration {itr}")
    logs = {}
    if critic_losses:
        logs["critic_loss"] = float(np.mean(critic_losses))
    if actor_losses:
        logs.update(actor_loss=float(np.mean(actor_losses)), mean_weight=float(np.mean(np.concatenate(weights))))
    logs.update(buffer_steps=S, mean_advantage=float(np.mean(advantages)))
    return logs


class AWRTrainer:
    """AWR for dppo.finetune.run_iterations (see PPOTrainer there for what a trainer provides)."""

    algorithm = "awr"
    optimizer_group = "actor_optimizer"

    def __init__(self, cfg: AWRConfig, backend: str) -> None:
        from dppo.agents import make_agent

        self.cfg, self.settings = cfg, cfg.awr
        self.agent = make_agent(cfg, backend)
        self.buffer = ReplayBuffer(self.settings.buffer_size)

    def noise_shape(self, n: int) -> tuple[int, ...]:
        from dppo.agents import noise_shape

        return noise_shape(self.cfg, n)

    def restore(self, ckpt: Checkpoint, done_itr: int) -> None:
        self.agent.load_groups(ckpt.groups, done_itr + 1)  # both schedules step once per iteration
        if "replay_buffer" not in ckpt.groups:
            raise CheckpointError("the AWR checkpoint has no replay_buffer group; it cannot be resumed exactly")
        self.buffer.load_state(ckpt.groups["replay_buffer"])

    def learning_rates(self) -> dict[str, float]:
        return self.agent.learning_rates()

    def train(self, ro: dict[str, Any], itr: int, seed: int) -> dict[str, float]:
        s = self.settings
        act = self.cfg.act_steps
        self.buffer.extend(ro["obs"], ro["samples"]["actions"][:, :, :act], ro["rewards"] * s.scale_reward_factor,
                           ro["terminated"])
        return awr_update(self.agent, self.buffer, s, self.cfg.diffusion.denoising_steps, seed, itr)

    def end_iteration(self, itr: int) -> None:
        self.agent.end_iteration()

    def state_groups(self) -> dict[str, Any]:
        return {**self.agent.state_groups(), "replay_buffer": self.buffer.state()}
