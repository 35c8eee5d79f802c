"""IBRL's part of the fine-tuning loop, as upstream TrainIBRLAgent: the demonstrations go into the replay
buffer first; after each env step, once itr > n_explore_steps and every update_freq-th iteration,
critic_num_update critic steps on minibatches drawn with replacement from the buffer (two target members
drawn for each), each followed by the targets' Polyak update, then one actor step on the last minibatch's
states and the target actor's Polyak update. IBRL never acts at random: its rollouts always compare the two
proposals (its step noise carries both proposals' noise, the drawn members and the soft pick's draw).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from dppo.algorithms import gaussian_replay as gr
from dppo.algorithms.registry import backend_class
from dppo.algorithms.replay import append
from dppo.parity.report import Quantities
from shared.algorithms.gaussian_replay import ibrl_step_noise_shape, random_pair
from shared.algorithms.offpolicy import minibatch_noise
from shared.settings.ibrl import IBRLConfig, IBRLSettings

ROWS, BC, NEXT, PAIR, ACTOR = range(5)  # draw streams of an update
ACTOR_COPIES = ("target_actor.", "bc_policy.")


def initial_params(cfg: IBRLConfig) -> OrderedDict:
    """base_policy_path's pre-trained Gaussian policy as the RL actor, its target and the frozen proposer (upstream
    deep-copies the loaded actor into both); a fresh critic ensemble (cfg.seed + 1) and its target copy. An IBRL
    checkpoint as base_policy_path gives its whole model."""
    return gr.initial_params(cfg, gr.policy_spec(cfg, ACTOR_COPIES, temperature=False), ACTOR_COPIES)


def build_agent(cfg: IBRLConfig, backend: str, init: OrderedDict) -> Any:
    return backend_class(backend, "ibrl_gaussian.IBRLGaussianAgent")(cfg.model.actor, cfg.critic, cfg.settings, init)


def step_noise_shape(cfg: IBRLConfig, n: int) -> tuple[int, ...]:
    s = cfg.settings
    return ibrl_step_noise_shape(n, s.chunk, s.n_critics)


def update(agent: Any, s: IBRLSettings, data: gr.ReplayData, seed: int, itr: int) -> dict[str, float]:
    """Iteration itr's update, if any (see the module docstring)."""
    if itr <= s.n_explore_steps or itr % s.update_freq != 0:
        return {}
    B, logs = s.batch_size, {}
    for k in range(s.critic_num_update):
        batch = {**data.online_rows(seed, itr, ROWS, k, B), "bc_noise": gr.noise(seed, itr, BC, k, (B, s.chunk)),
                 "next_noise": gr.noise(seed, itr, NEXT, k, (B, s.chunk)),
                 "pair": random_pair(minibatch_noise(seed, itr, PAIR, k, (s.n_critics,)))}
        append(logs, agent.update_critic(batch))
    actor_noise = gr.noise(seed, itr, ACTOR, 0, (B, s.chunk))
    append(logs, agent.update_actor({"obs": batch["obs"], "actor_noise": actor_noise}))
    return gr.losses(logs, "ibrl", itr)


def parity_quantities(cfg: IBRLConfig, agents: dict[str, Any], fresh: dict[str, Any], init: OrderedDict, batch: int,
                      seed: int) -> Quantities:
    """`dppo parity`'s IBRL section (dppo/algorithms/gaussian_replay.py)."""
    return gr.parity_quantities(cfg, agents, fresh, init, batch, seed, update)


class IBRLTrainer(gr.GaussianReplayTrainer):
    algorithm = "ibrl"
    explores = False
    update_fn = staticmethod(update)
    offline_in_buffer = True  # its step noise: step_noise_shape (dppo/algorithms/agents.py asks this module)


Trainer = IBRLTrainer
