"""The part of the fine-tuning loop the replay-buffer baselines (DIPO, DQL, IDQL, QSM) share; each
algorithm's module (dppo/algorithms/<algo>.py) subclasses ReplayTrainer with its minibatches.

After each training rollout its transitions go into one TransitionBuffer (evaluation rollouts are not
stored), then `update` trains on minibatches drawn from it with shared/algorithms/offpolicy.py's seeded draws.
Checkpoints carry the buffer (`replay_buffer` group), so a resumed run trains on exactly what an
uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent, noise_shape
from dppo.runs.phases import phase
from shared.algorithms.offpolicy import TransitionBuffer, transitions_of
from shared.checkpoint import Checkpoint
from shared.errors import CheckpointError, TrainingDivergedError
from shared.precision import as_compute
from shared.settings.replay import ReplaySettings


def transition_batch(buffer: TransitionBuffer, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The buffered transitions at `rows` in the compute dtype: obs, next_obs (B, To, Do), actions (B, Ta, Da),
    rewards and terminated (B,) made float32 values first (upstream's .float())."""
    d = buffer.rows(rows)
    return {"obs": as_compute(d["obs"]), "next_obs": as_compute(d["next_obs"]), "actions": as_compute(d["actions"]),
            "rewards": as_compute(d["rewards"].astype(np.float32)),
            "terminated": as_compute(d["terminated"].astype(np.float32))}


def append(logs: dict[str, list[float]], out: dict[str, float]) -> None:
    """Add one update's logged values to the iteration's lists (mean_losses averages them)."""
    for name, value in out.items():
        logs.setdefault(name, []).append(value)


def mean_losses(logs: dict[str, list[float]], algorithm: str, itr: int) -> dict[str, float]:
    """Each logged value averaged over the iteration's minibatches (those never logged left out); a non-finite
    one stops the run."""
    if not all(math.isfinite(v) for values in logs.values() for v in values):
        raise TrainingDivergedError(f"non-finite {algorithm} loss at iteration {itr}")
    return {name: float(np.mean(values)) for name, values in logs.items() if values}


Minibatch = Callable[[TransitionBuffer, Any, int, int, int], dict[str, np.ndarray]]  # (buffer, s, seed, itr, k)


def replay_update(agent: Any, buffer: TransitionBuffer, s: ReplaySettings, seed: int, itr: int,
                  minibatch: Minibatch, algorithm: str) -> dict[str, float]:
    """One training iteration of DQL, IDQL or QSM: `s.minibatches` agent updates, the k-th on
    minibatch(buffer, s, seed, itr, k), the actor stepping from `n_critic_warmup_itr` on; the mean losses."""
    step_actor = itr >= s.n_critic_warmup_itr
    logs: dict[str, list[float]] = {}
    for k in range(s.minibatches):
        append(logs, agent.update(minibatch(buffer, s, seed, itr, k), step_actor))
    return mean_losses(logs, algorithm.upper(), itr)


class ReplayTrainer:
    """A replay baseline for dppo.training.finetune.run_iterations (see dppo.algorithms.ppo.PPOTrainer for what a
    trainer provides). Subclasses set `algorithm` (its settings are cfg.<algorithm>, or `settings_of`) and either
    `minibatch` (for replay_update) or their own `update(itr, seed)`; their agents provide learning_rates(),
    load_groups(groups, iterations), state_groups() and end_iteration(). The Gaussian baselines'
    (dppo/algorithms/gaussian_replay.py) subclass it too."""

    algorithm = ""
    optimizer_group = "actor_optimizer"
    minibatch: Minibatch | None = None

    def __init__(self, cfg: Any, backend: str) -> None:
        self.cfg = cfg
        self.settings: ReplaySettings = self.settings_of(cfg)
        self.agent = make_agent(cfg, backend)
        self.buffer = TransitionBuffer(self.settings.buffer_transitions)

    def settings_of(self, cfg: Any) -> Any:
        return getattr(cfg, self.algorithm)

    def noise_shape(self, n: int) -> tuple[int, ...]:
        return noise_shape(self.cfg, n)

    def restore(self, ckpt: Checkpoint, done_itr: int) -> None:
        self.agent.load_groups(ckpt.groups, done_itr + 1)  # every schedule steps once per iteration
        if "replay_buffer" not in ckpt.groups:
            raise CheckpointError(f"the {self.algorithm.upper()} checkpoint has no replay_buffer group; it cannot be "
                                  "resumed exactly")
        self.buffer.load_state(ckpt.groups["replay_buffer"])

    def learning_rates(self) -> dict[str, float]:
        return self.agent.learning_rates()

    def store(self, ro: dict[str, Any]) -> None:
        """A training rollout's transitions into the buffer."""
        s = self.settings
        self.buffer.extend(**transitions_of(ro, s.act_steps, s.scale_reward_factor))

    def train(self, ro: dict[str, Any], itr: int, seed: int) -> dict[str, float]:
        with phase("replay buffer"):
            self.store(ro)
        with phase("update"):
            logs = self.update(itr, seed)
        logs["buffer_transitions"] = len(self.buffer)
        return logs

    def update(self, itr: int, seed: int) -> dict[str, float]:
        minibatch = type(self).minibatch
        assert minibatch is not None, f"{type(self).__name__} sets neither minibatch nor update"
        return replay_update(self.agent, self.buffer, self.settings, seed, itr, minibatch, self.algorithm)

    def end_iteration(self, itr: int) -> None:
        self.agent.end_iteration()

    def state_groups(self) -> dict[str, Any]:
        return {**self.agent.state_groups(), "replay_buffer": self.buffer.state()}
