"""The part of the fine-tuning loop the Gaussian off-policy fine-tuners (SAC, RLPD, IBRL, Cal-QL) share; each
algorithm's module (dppo/algorithms/<algo>.py) subclasses GaussianReplayTrainer with its updates.

Their iterations differ from DPPO's (dppo/training/finetune.py runs them through `rollout_plan`): a
training iteration is n_steps policy steps (acting uniformly at random for the first n_explore_steps
iterations where the algorithm explores), an evaluation iteration runs until n_eval_episode episodes have
ended. Training transitions go into one TransitionBuffer; the demonstrations (offline_dataset) are read once
at the start. Checkpoints carry the buffer, so a resumed run trains on what an uninterrupted one would.
Every random number (rows, sampling noise, random actions, drawn critics) comes from
shared/algorithms/offpolicy.py's seeded draws.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dppo.algorithms.agents import noise_shape as driver_noise_shape
from dppo.algorithms.plan import RolloutPlan
from dppo.algorithms.replay import ReplayTrainer, mean_losses
from dppo.algorithms.starting_weights import target_copy
from dppo.checkpoints.formats import read_checkpoint
from dppo.parity.report import Quantities
from shared.algorithms.gaussian_replay import explore_actions
from shared.algorithms.offpolicy import TransitionBuffer, minibatch_noise, minibatch_rows
from shared.checkpoint import check_strict
from shared.config.loading import locate_data_file
from shared.data.qlearning import q_learning_transitions
from shared.errors import CheckpointError
from shared.param_spec import critic_ensemble_spec, critic_obs_act_spec, torch_default_init
from shared.param_spec.families import family_init_over, network_spec
from shared.precision import as_compute
from shared.settings.gaussian_replay import EVAL_STEP_CAP, GaussianReplayConfig, GaussianReplaySettings


class UniformExplorer:
    """Acts uniformly at random in [-1, 1] from each step's noise (the loop's seeded draws)."""

    def __init__(self, s: GaussianReplaySettings) -> None:
        self.s = s

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        return {"actions": explore_actions(noise, self.s.horizon_steps, self.s.action_dim)}


def policy_spec(cfg: GaussianReplayConfig, actor_copies: tuple[str, ...] = (), temperature: bool = True) -> OrderedDict:
    """Canonical names and shapes of a run's model: network.* (and its copies under `actor_copies`), its critics
    and their targets, log_alpha where a temperature is learned."""
    m = cfg.model
    spec = network_spec(m.actor, "network.")
    for prefix in actor_copies:
        spec.update(network_spec(m.actor, prefix))
    if temperature:
        spec["log_alpha"] = ()
    if m.ensemble:
        spec.update(critic_ensemble_spec(m.critic, m.n_critics, "critic_networks."))
        spec.update(critic_ensemble_spec(m.critic, m.n_critics, "target_networks."))
    else:
        spec.update(critic_obs_act_spec(m.critic, "critic."))
        spec.update(critic_obs_act_spec(m.critic, "target_critic."))
    return spec


def fresh_params(cfg: GaussianReplayConfig, spec: OrderedDict) -> OrderedDict:
    """A fresh initialisation: the actor from cfg.seed, the critics from cfg.seed + 1, each target a copy of its
    source (upstream deep-copies them), log_alpha = log(init_temperature) where one is learned."""
    actor = OrderedDict((k, v) for k, v in spec.items() if k.startswith("network."))
    critics = OrderedDict((k, v) for k, v in spec.items() if k.startswith(("critic.", "critic_networks.")))
    init = family_init_over(torch_default_init(actor, cfg.seed), cfg.model.actor, cfg.seed, "network.")
    init.update(torch_default_init(critics, cfg.seed + 1))
    for source, target in (("critic.", "target_critic."), ("critic_networks.", "target_networks."),
                           ("network.", "target_actor."), ("network.", "bc_policy.")):
        if any(k.startswith(target) for k in spec):
            target_copy(init, source, target)
    if any(k.startswith("log_alpha") for k in spec):
        init["log_alpha"] = np.array(np.log(cfg.settings.init_temperature), np.float32)
    return init


def initial_params(cfg: GaussianReplayConfig, spec: OrderedDict, copies: tuple[str, ...] = ()) -> OrderedDict:
    """What a run starts from: fresh_params, then base_policy_path's weights where given. A fine-tuning
    checkpoint of the same algorithm gives its whole model (the temperature excepted: it restarts at
    init_temperature, as upstream's Cal-QL online phase starts from the offline one); a pre-training checkpoint
    (its EMA policy) or another Gaussian policy's model gives network.*, copied to each prefix in `copies`."""
    init = fresh_params(cfg, spec)
    if not cfg.base_policy_path:
        return init
    ckpt = read_checkpoint(cfg.base_policy_path, cfg)
    if ckpt.meta.get("kind") == "finetune" and ckpt.meta.get("algorithm") == cfg.algorithm:
        weights = OrderedDict((k, v) for k, v in ckpt.group("model").items() if k != "log_alpha")
        check_strict(OrderedDict((k, v) for k, v in spec.items() if k != "log_alpha"), weights,
                     f"base policy {cfg.base_policy_path}")
        init.update(weights)
        return init
    group = "ema" if "ema" in ckpt.groups else "model"
    weights = OrderedDict((k, v) for k, v in ckpt.group(group).items() if k.startswith("network."))
    if not weights or any(k.startswith("network.time_embedding.") for k in weights):
        kind = "a diffusion policy" if weights else "no policy (network.* tensors)"
        raise CheckpointError(f"{cfg.base_policy_path} [{group}] holds {kind}, not a Gaussian policy: "
                              f"{cfg.algorithm.upper()} starts from a Gaussian one (e.g. a pre_gaussian_mlp "
                              "checkpoint)")
    check_strict(network_spec(cfg.model.actor, "network."), weights, f"base policy {cfg.base_policy_path}")
    init.update(weights)
    for prefix in copies:
        target_copy(init, "network.", prefix)
    return init


def offline_transitions(cfg: GaussianReplayConfig, returns: bool = False) -> dict[str, np.ndarray]:
    """The demonstrations of cfg.offline_dataset as transitions (returns-to-go too where asked)."""
    d = cfg.offline_dataset
    assert d is not None
    path = locate_data_file(d.dataset_path if d.dataset_path else cfg.offline_dataset_path or "")
    return q_learning_transitions(path, d.horizon_steps, d.cond_steps, d.max_n_episodes,
                                  d.discount_factor if returns else None)


def batch_of(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Buffer rows in the compute dtype: obs, next_obs, actions, rewards and terminated (float32 values first,
    upstream's .float()), returns where present."""
    out = {k: as_compute(np.asarray(rows[k], np.float32)) for k in ("obs", "next_obs", "actions", "rewards")}
    out["terminated"] = as_compute(np.asarray(rows["terminated"], np.float32))
    if "returns" in rows:
        out["returns"] = as_compute(np.asarray(rows["returns"], np.float32))
    return out


def concat_batches(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def noise(seed: int, itr: int, stream: int, k: int, shape: tuple[int, ...]) -> np.ndarray:
    return as_compute(minibatch_noise(seed, itr, stream, k, shape))


@dataclass
class ReplayData:
    """What an update draws from: the online buffer, the demonstrations (RLPD, Cal-QL; None otherwise) and the
    env steps the last training rollout collected (Cal-QL online: its number of updates)."""

    buffer: TransitionBuffer
    offline: dict[str, np.ndarray] | None = None
    collected: int = 0

    def online_rows(self, seed: int, itr: int, stream: int, k: int, size: int) -> dict[str, np.ndarray]:
        """`size` buffer rows drawn with replacement (upstream's np.random.choice), in the compute dtype."""
        return batch_of(self.buffer.rows(minibatch_rows(seed, itr, stream, k, len(self.buffer), size)))

    def offline_rows(self, seed: int, itr: int, stream: int, k: int, size: int) -> dict[str, np.ndarray]:
        """`size` demonstration rows drawn with replacement, in the compute dtype."""
        assert self.offline is not None
        rows = minibatch_rows(seed, itr, stream, k, len(self.offline["rewards"]), size)
        return batch_of({f: v[rows] for f, v in self.offline.items()})


# An algorithm's update of one training iteration: (agent, settings, data, seed, itr) -> mean losses.
Update = Callable[[Any, Any, ReplayData, int, int], dict[str, float]]


class GaussianReplayTrainer(ReplayTrainer):
    """A Gaussian off-policy fine-tuner for dppo.training.finetune.run_iterations: the replay trainer (buffer in
    checkpoints, exact resume) with this loop's rollout plan. Subclasses set `algorithm`, `explores`, `update_fn`
    (their module's `update`) and how they use the demonstrations."""

    explores = True  # act uniformly at random while itr < n_explore_steps (IBRL never does)
    update_fn: Update | None = None
    uses_offline = False  # RLPD, Cal-QL: minibatches draw half their rows from the demonstrations
    offline_in_buffer = False  # IBRL: the demonstrations go into the replay buffer before the first step
    offline_returns = False  # Cal-QL: with returns-to-go

    def __init__(self, cfg: Any, backend: str) -> None:
        super().__init__(cfg, backend)
        self.data = ReplayData(self.buffer)
        if self.uses_offline or self.offline_in_buffer:
            offline = offline_transitions(cfg, self.offline_returns)
            if self.offline_in_buffer:
                self.buffer.append_rows(offline)
            else:
                self.data.offline = offline
        self.explorer = UniformExplorer(self.settings)

    def settings_of(self, cfg: Any) -> GaussianReplaySettings:
        return cfg.settings

    def rollout_plan(self, itr: int, eval_mode: bool) -> RolloutPlan:
        s = self.settings
        if eval_mode:
            return RolloutPlan(EVAL_STEP_CAP, s.eval_episodes)
        explore = self.explores and itr < s.n_explore_steps
        return RolloutPlan(s.n_steps, None, self.explorer if explore else None)

    def store(self, ro: dict[str, Any]) -> None:
        self.data.collected = len(ro["rewards"])
        if self.data.collected:
            super().store(ro)

    def update(self, itr: int, seed: int) -> dict[str, float]:
        update = type(self).update_fn
        assert update is not None, f"{type(self).__name__} sets no update_fn"
        return update(self.agent, self.settings, self.data, seed, itr)


def losses(logs: dict[str, list[float]], algorithm: str, itr: int) -> dict[str, float]:
    """Each logged value's mean over the iteration's updates; a non-finite one stops the run."""
    return mean_losses(logs, algorithm.upper(), itr)


def synthetic_data(cfg: Any, batch: int, seed: int, returns: bool) -> ReplayData:
    """A buffer and demonstrations of `batch` random transitions each (dppo parity's inputs)."""
    rng = np.random.default_rng([seed, 20])
    To, Do, Ta, Da = cfg.cond_steps, cfg.obs_dim, cfg.act_steps, cfg.action_dim

    def rows(n: int) -> dict[str, np.ndarray]:
        out = {"obs": rng.uniform(-1, 1, (n, To, Do)).astype(np.float32),
               "next_obs": rng.uniform(-1, 1, (n, To, Do)).astype(np.float32),
               "actions": rng.uniform(-1, 1, (n, Ta, Da)).astype(np.float32), "rewards": rng.normal(0, 1, n),
               "terminated": rng.random(n) < 0.3}
        if returns:
            out["returns"] = rng.normal(0, 3, n).astype(np.float32)
        return out

    buffer = TransitionBuffer(10 * batch)
    buffer.append_rows(rows(batch))
    return ReplayData(buffer, rows(batch), collected=batch)


def parity_quantities(cfg: Any, agents: dict[str, Any], fresh: dict[str, Any], init: OrderedDict, batch: int,
                      seed: int, update: Update, returns: bool = False, updates: int = 2,
                      **changes: Any) -> Quantities:
    """`dppo parity`'s section of a Gaussian off-policy fine-tuner: the agents reset to `init` with fresh
    optimizers; acting (stochastic and deterministic); then `updates` training iterations of its whole update
    on the same random buffer and demonstrations, end to end and teacher-forced (tf_forced restarts every
    iteration from torch's model and optimizer state), every logged loss and every parameter. `changes`: settings
    that keep an iteration short (a float32 difference grows over a thousand chained updates until the twins
    are compared on chaos, not on their arithmetic)."""
    s = dataclasses.replace(cfg.settings, batch_size=batch, n_explore_steps=0, **changes)
    for b, agent in agents.items():
        agent.load_groups({**fresh[b], "model": init}, 0)
    q: Quantities = {}
    rng = np.random.default_rng([seed, 21])
    obs = as_compute(rng.uniform(-1, 1, (batch, cfg.cond_steps, cfg.obs_dim)).astype(np.float32))
    noise = as_compute(rng.standard_normal(driver_noise_shape(cfg, batch)).astype(np.float32))
    for det in (False, True):
        acts = {b: agents[b].act(obs, noise, det)["actions"] for b in ("torch", "tf")}
        q[(f"{cfg.algorithm}/act", f"deterministic={det}")] = (acts["torch"], acts["tf"])
    data = {b: synthetic_data(cfg, batch, seed, returns) for b in agents}
    for itr in range(1, updates + 1):
        agents["tf_forced"].load_groups(agents["torch"].state_groups(), itr - 1)
        logs = {b: update(a, s, data[b], seed, itr) for b, a in agents.items()}
        for name, value in logs["torch"].items():
            q[(f"{cfg.algorithm}/update", f"{name} itr {itr}")] = (value, logs["tf"][name])
            q[(f"{cfg.algorithm}/forced/update", f"{name} itr {itr}")] = (value, logs["tf_forced"][name])
        groups = {b: a.state_groups()["model"] for b, a in agents.items()}
        for name, value in groups["torch"].items():
            q[(f"{cfg.algorithm}/forced/update", f"{name} itr {itr}")] = (value, groups["tf_forced"][name])
            if itr == updates:
                q[(f"{cfg.algorithm}/update", name)] = (value, groups["tf"][name])
        for a in agents.values():
            a.end_iteration()
    return q
