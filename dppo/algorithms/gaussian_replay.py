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

from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent
from dppo.algorithms.plan import RolloutPlan
from dppo.algorithms.replay import mean_losses
from dppo.checkpoints.formats import read_checkpoint
from shared.algorithms.gaussian_replay import explore_actions
from shared.algorithms.offpolicy import TransitionBuffer, minibatch_noise, minibatch_rows, transitions_of
from shared.checkpoint import Checkpoint, check_strict
from shared.config.loading import locate_data_file
from shared.data.qlearning import q_learning_transitions
from shared.errors import CheckpointError
from shared.param_spec import critic_ensemble_spec, critic_obs_act_spec, gaussian_mlp_spec, torch_default_init
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
    spec = gaussian_mlp_spec(m.actor, "network.")
    for prefix in actor_copies:
        spec.update(gaussian_mlp_spec(m.actor, prefix))
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
    init = torch_default_init(actor, cfg.seed)
    init.update(torch_default_init(critics, cfg.seed + 1))
    for source, target in (("critic.", "target_critic."), ("critic_networks.", "target_networks."),
                           ("network.", "target_actor."), ("network.", "bc_policy.")):
        if any(k.startswith(target) for k in spec):
            init.update((target + k[len(source):], np.array(v, copy=True)) for k, v in list(init.items())
                        if k.startswith(source))
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
    check_strict(gaussian_mlp_spec(cfg.model.actor, "network."), weights, f"base policy {cfg.base_policy_path}")
    init.update(weights)
    for prefix in copies:
        init.update((prefix + k[len("network."):], np.array(v, copy=True)) for k, v in weights.items())
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


class GaussianReplayTrainer:
    """A Gaussian off-policy fine-tuner for dppo.training.finetune.run_iterations. Subclasses set `algorithm`
    and `explores`, and write `update(itr, seed)` (called on every training iteration)."""

    algorithm = ""
    explores = True  # act uniformly at random while itr < n_explore_steps (IBRL never does)
    optimizer_group = "actor_optimizer"

    def __init__(self, cfg: Any, backend: str) -> None:
        self.cfg = cfg
        self.settings: GaussianReplaySettings = cfg.settings
        self.agent = make_agent(cfg, backend)
        self.buffer = TransitionBuffer(self.settings.buffer_transitions)
        self.explorer = UniformExplorer(self.settings)

    def noise_shape(self, n: int) -> tuple[int, ...]:
        return (n, self.settings.chunk)

    def rollout_plan(self, itr: int, eval_mode: bool) -> RolloutPlan:
        s = self.settings
        if eval_mode:
            return RolloutPlan(EVAL_STEP_CAP, s.eval_episodes)
        explore = self.explores and itr < s.n_explore_steps
        return RolloutPlan(s.n_steps, None, self.explorer if explore else None)

    def store(self, ro: dict[str, Any]) -> None:
        """A training rollout's transitions into the buffer."""
        if len(ro["rewards"]):
            s = self.settings
            self.buffer.extend(**transitions_of(ro, s.act_steps, s.scale_reward_factor))

    def train(self, ro: dict[str, Any], itr: int, seed: int) -> dict[str, float]:
        self.store(ro)
        logs = self.update(itr, seed)
        logs["buffer_transitions"] = len(self.buffer)
        return logs

    def update(self, itr: int, seed: int) -> dict[str, float]:
        raise NotImplementedError

    def online_rows(self, seed: int, itr: int, stream: int, k: int, size: int) -> dict[str, np.ndarray]:
        """`size` rows drawn with replacement from the buffer (upstream's np.random.choice)."""
        return batch_of(self.buffer.rows(minibatch_rows(seed, itr, stream, k, len(self.buffer), size)))

    def losses(self, logs: dict[str, list[float]], itr: int) -> dict[str, float]:
        return mean_losses(logs, self.algorithm.upper(), itr)

    def restore(self, ckpt: Checkpoint, done_itr: int) -> None:
        self.agent.load_groups(ckpt.groups, done_itr + 1)
        if "replay_buffer" not in ckpt.groups:
            raise CheckpointError(f"the {self.algorithm.upper()} checkpoint has no replay_buffer group; it cannot be "
                                  "resumed exactly")
        self.buffer.load_state(ckpt.groups["replay_buffer"])

    def learning_rates(self) -> dict[str, float]:
        return self.agent.learning_rates()

    def end_iteration(self, itr: int) -> None:
        self.agent.end_iteration()

    def state_groups(self) -> dict[str, Any]:
        return {**self.agent.state_groups(), "replay_buffer": self.buffer.state()}


def append(logs: dict[str, list[float]], out: dict[str, float]) -> None:
    for name, value in out.items():
        logs.setdefault(name, []).append(value)
