"""SAC's part of the fine-tuning loop (dppo/algorithms/gaussian_replay.py: buffer, exploration, evaluation
episodes; dppo/training/finetune.py: iterations, checkpoints, resume), as upstream TrainSACAgent after each
env step: once exploration is over (itr > n_explore_steps) and every critic_update_freq-th iteration, one
minibatch of distinct rows (upstream draws without replacement) gets a critic step and the target's Polyak
update, and every actor_update_freq-th iteration also two actor and temperature steps. Updates wait until the
buffer holds a minibatch (upstream's draw without replacement fails before that).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from dppo.algorithms import gaussian_replay as gr
from dppo.algorithms.registry import backend_class
from dppo.parity.report import Quantities
from shared.algorithms.offpolicy import minibatch_rows_distinct
from shared.settings.sac import SACConfig, SACSettings

ROWS, NEXT, ACTOR, TEMPERATURE = range(4)  # draw streams of an update


def initial_params(cfg: SACConfig) -> OrderedDict:
    """A fresh actor (cfg.seed), double-Q critic (cfg.seed + 1) and its target copy, log(init_temperature); a
    SAC checkpoint as base_policy_path gives its model, a Gaussian policy's checkpoint its actor."""
    return gr.initial_params(cfg, gr.policy_spec(cfg))


def build_agent(cfg: SACConfig, backend: str, init: OrderedDict) -> Any:
    return backend_class(backend, "sac_gaussian.SACGaussianAgent")(cfg.model.actor, cfg.critic, cfg.settings, init)


def update(agent: Any, s: SACSettings, data: gr.ReplayData, seed: int, itr: int) -> dict[str, float]:
    """Iteration itr's update, if any (see the module docstring)."""
    if itr <= s.n_explore_steps or itr % s.critic_update_freq != 0 or len(data.buffer) < s.batch_size:
        return {}
    B = s.batch_size
    rows = minibatch_rows_distinct(seed, itr, ROWS, 0, len(data.buffer), B)
    repeats = s.actor_repeats if itr % s.actor_update_freq == 0 else 0
    batch = {**gr.batch_of(data.buffer.rows(rows)), "next_noise": gr.noise(seed, itr, NEXT, 0, (B, s.chunk)),
             "actor_noise": gr.noise(seed, itr, ACTOR, 0, (repeats, B, s.chunk)),
             "temperature_noise": gr.noise(seed, itr, TEMPERATURE, 0, (repeats, B, s.chunk))}
    return gr.losses({k: [v] for k, v in agent.update(batch, repeats).items()}, "sac", itr)


def parity_quantities(cfg: SACConfig, agents: dict[str, Any], fresh: dict[str, Any], init: OrderedDict, batch: int,
                      seed: int) -> Quantities:
    """`dppo parity`'s SAC section (dppo/algorithms/gaussian_replay.py)."""
    return gr.parity_quantities(cfg, agents, fresh, init, batch, seed, update, updates=2)


class SACTrainer(gr.GaussianReplayTrainer):
    algorithm = "sac"
    update_fn = staticmethod(update)


Trainer = SACTrainer
