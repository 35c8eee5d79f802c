"""RLPD's part of the fine-tuning loop, as upstream TrainRLPDAgent after each env step once exploration is over
(itr >= n_explore_steps): critic_num_update critic steps, each on a minibatch half drawn from the
demonstrations and half from the online buffer (with replacement) with two target members drawn at random,
each followed by the targets' Polyak update; then one actor step and one temperature step on the last
minibatch's states (from n_critic_warmup_itr on, a key of upstream's older walker2d layout; 0 otherwise).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.algorithms import gaussian_replay as gr
from dppo.algorithms.registry import backend_class
from dppo.algorithms.replay import append
from dppo.parity.report import Quantities
from shared.algorithms.gaussian_replay import random_pair
from shared.algorithms.offpolicy import minibatch_noise
from shared.settings.rlpd import RLPDConfig, RLPDSettings

OFFLINE_ROWS, ONLINE_ROWS, NEXT, PAIR, ACTOR, TEMPERATURE = range(6)  # draw streams of an update


def initial_params(cfg: RLPDConfig) -> OrderedDict:
    """A fresh actor (cfg.seed), critic ensemble (cfg.seed + 1) and its target copy, log(init_temperature); an
    RLPD checkpoint as base_policy_path gives its model, a Gaussian policy's checkpoint its actor."""
    return gr.initial_params(cfg, gr.policy_spec(cfg))


def build_agent(cfg: RLPDConfig, backend: str, init: OrderedDict) -> Any:
    return backend_class(backend, "rlpd_gaussian.RLPDGaussianAgent")(cfg.model.actor, cfg.critic, cfg.settings, init)


def critic_batch(s: RLPDSettings, data: gr.ReplayData, seed: int, itr: int, k: int) -> dict[str, np.ndarray]:
    """Critic minibatch k: half demonstrations, half online rows, next-action noise, the two drawn members."""
    half = s.batch_size // 2
    batch = gr.concat_batches(data.offline_rows(seed, itr, OFFLINE_ROWS, k, half),
                              data.online_rows(seed, itr, ONLINE_ROWS, k, half))
    batch["next_noise"] = gr.noise(seed, itr, NEXT, k, (2 * half, s.chunk))
    batch["pair"] = random_pair(minibatch_noise(seed, itr, PAIR, k, (s.n_critics,)))
    return batch


def update(agent: Any, s: RLPDSettings, data: gr.ReplayData, seed: int, itr: int) -> dict[str, float]:
    """Iteration itr's update (see the module docstring)."""
    if itr < s.n_explore_steps:
        return {}
    logs: dict[str, list[float]] = {}
    for k in range(s.critic_num_update):
        batch = critic_batch(s, data, seed, itr, k)
        append(logs, agent.update_critic(batch))
    if itr >= s.n_critic_warmup_itr:
        B = len(batch["obs"])
        append(logs, agent.update_actor({"obs": batch["obs"],
                                            "actor_noise": gr.noise(seed, itr, ACTOR, 0, (B, s.chunk)),
                                            "temperature_noise": gr.noise(seed, itr, TEMPERATURE, 0, (B, s.chunk))}))
    return gr.losses(logs, "rlpd", itr)


def parity_quantities(cfg: RLPDConfig, agents: dict[str, Any], fresh: dict[str, Any], init: OrderedDict, batch: int,
                      seed: int) -> Quantities:
    """`dppo parity`'s RLPD section (dppo/algorithms/gaussian_replay.py)."""
    return gr.parity_quantities(cfg, agents, fresh, init, batch, seed, update)


class RLPDTrainer(gr.GaussianReplayTrainer):
    algorithm = "rlpd"
    update_fn = staticmethod(update)
    uses_offline = True


Trainer = RLPDTrainer
