"""Cal-QL's part of the fine-tuning loop, as upstream TrainCalQLAgent. Offline (train_online false) an
iteration takes no env step and num_update updates on minibatches of the demonstrations; online it collects
n_episode_per_epoch whole episodes (their returns-to-go stored beside the transitions) and takes one update
per collected step times online_utd_ratio (see shared/settings/calql.py for how that departs from upstream),
each on half demonstrations, half online rows. Every update: a critic step with uniform random actions in
the regulariser, the target's Polyak update, an actor step and a temperature step.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.algorithms import gaussian_replay as gr
from dppo.algorithms.plan import RolloutPlan
from dppo.algorithms.registry import backend_class
from dppo.algorithms.replay import append
from dppo.parity.report import Quantities
from shared.algorithms.gaussian_replay import returns_to_go
from shared.algorithms.offpolicy import minibatch_uniform, transitions_of
from shared.precision import as_compute
from shared.settings.calql import CalQLConfig, CalQLSettings
from shared.settings.gaussian_replay import EVAL_STEP_CAP

OFFLINE_ROWS, ONLINE_ROWS, RANDOM_ACTIONS, NEXT, PI, ACTOR, TEMPERATURE = range(7)  # draw streams of an update


def initial_params(cfg: CalQLConfig) -> OrderedDict:
    """A fresh actor (cfg.seed), double-Q critic (cfg.seed + 1), its target copy and log(init_temperature); the
    online phase's base_policy_path, a Cal-QL checkpoint of the offline phase, gives actor, critic and target
    (upstream loads the whole offline model; the temperature restarts)."""
    return gr.initial_params(cfg, gr.policy_spec(cfg))


def build_agent(cfg: CalQLConfig, backend: str, init: OrderedDict) -> Any:
    return backend_class(backend, "calql_gaussian.CalQLGaussianAgent")(cfg.model.actor, cfg.critic, cfg.settings,
                                                                        init)


def episode_returns_to_go(rewards: np.ndarray, first: np.ndarray, discount: float) -> np.ndarray:
    """Discounted returns-to-go (T, N) of a rollout's rewards (T, N), each env's episodes split at `first`
    (T+1, N); an episode still running at the end is summed to there."""
    T, N = rewards.shape
    out = np.zeros((T, N), np.float32)
    for e in range(N):
        bounds = [*np.flatnonzero(first[1:T, e] == 1) + 1, T]
        lengths = np.diff([0, *bounds])
        out[:, e] = returns_to_go(rewards[:, e], lengths[lengths > 0], discount)
    return out


def batch(s: CalQLSettings, data: gr.ReplayData, seed: int, itr: int, k: int) -> dict[str, np.ndarray]:
    """Update k's minibatch: demonstrations (half of it online), random actions and every noise it samples."""
    B = s.batch_size
    out = data.offline_rows(seed, itr, OFFLINE_ROWS, k, B // 2 if s.train_online else B)
    if s.train_online:
        out = gr.concat_batches(out, data.online_rows(seed, itr, ONLINE_ROWS, k, B // 2))
    rows = len(out["obs"])
    uniform = minibatch_uniform(seed, itr, RANDOM_ACTIONS, k, (rows, s.n_random_actions, s.horizon_steps,
                                                                   s.action_dim))
    return {**out, "random_actions": as_compute((uniform * 2 - 1).astype(np.float32)),
            "next_noise": gr.noise(seed, itr, NEXT, k, (rows * s.cql_n_actions, s.chunk)),
            "pi_noise": gr.noise(seed, itr, PI, k, (rows, s.chunk)),
            "actor_noise": gr.noise(seed, itr, ACTOR, k, (rows, s.chunk)),
            "temperature_noise": gr.noise(seed, itr, TEMPERATURE, k, (rows, s.chunk))}


def update(agent: Any, s: CalQLSettings, data: gr.ReplayData, seed: int, itr: int) -> dict[str, float]:
    """Iteration itr's updates (see the module docstring)."""
    if itr < s.n_explore_steps or (s.train_online and len(data.buffer) == 0):
        return {}
    n = s.num_update if not s.train_online else int(data.collected * s.n_envs * s.online_utd_ratio)
    logs: dict[str, list[float]] = {}
    for k in range(n):
        append(logs, agent.update(batch(s, data, seed, itr, k)))
    return gr.losses(logs, "calql", itr)


def parity_quantities(cfg: CalQLConfig, agents: dict[str, Any], fresh: dict[str, Any], init: OrderedDict, batch: int,
                      seed: int) -> Quantities:
    """`dppo parity`'s Cal-QL section (dppo/algorithms/gaussian_replay.py; offline and online configs alike)."""
    return gr.parity_quantities(cfg, agents, fresh, init, batch, seed, update, returns=True, num_update=3)


class CalQLTrainer(gr.GaussianReplayTrainer):
    algorithm = "calql"
    update_fn = staticmethod(update)
    uses_offline = True
    offline_returns = True

    def rollout_plan(self, itr: int, eval_mode: bool) -> RolloutPlan:
        s = self.settings
        if eval_mode:
            return RolloutPlan(EVAL_STEP_CAP, s.eval_episodes)
        if not s.train_online:
            return RolloutPlan(0)
        return RolloutPlan(EVAL_STEP_CAP, s.n_episode_per_epoch,
                           self.explorer if itr < s.n_explore_steps else None)

    def store(self, ro: dict[str, Any]) -> None:
        s = self.settings
        self.data.collected = len(ro["rewards"])
        if self.data.collected:
            rtg = episode_returns_to_go(ro["rewards"] * s.scale_reward_factor, ro["first"], s.gamma)
            self.buffer.extend(**transitions_of(ro, s.act_steps, s.scale_reward_factor), returns=rtg)


Trainer = CalQLTrainer
