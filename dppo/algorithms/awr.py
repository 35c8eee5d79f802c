"""AWR's part of the fine-tuning loop (dppo/training/finetune.py runs the iterations, evaluation, checkpoints and
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
from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent, noise_shape
from dppo.algorithms.registry import backend_class
from dppo.algorithms.starting_weights import regression_initial_params
from dppo.parity.report import Quantities, probe_quantities
from dppo.runs.phases import phase
from shared.algorithms.awr import ReplayBuffer, advantage_weights, minibatch_rows, td_lambda_targets
from shared.checkpoint import Checkpoint
from shared.errors import CheckpointError, TrainingDivergedError
from shared.param_spec import critic_obs_spec
from shared.precision import as_compute
from shared.settings.awr import AWRConfig, AWRSettings


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


def initial_params(cfg: AWRConfig) -> OrderedDict:
    """The policy as RWR's (base_policy_path's over a fresh init) and a fresh V critic drawn after it; an AWR
    checkpoint gives its critic too."""
    return regression_initial_params(cfg, critic_obs_spec(cfg.critic, "critic."))


def build_agent(cfg: AWRConfig, backend: str, init: OrderedDict) -> object:
    return backend_class(backend, "awr_diffusion.AWRDiffusionAgent")(cfg.diffusion, cfg.critic, cfg.awr, init)


class AWRTrainer:
    """AWR for dppo.training.finetune.run_iterations (see PPOTrainer there for what a trainer provides)."""

    algorithm = "awr"
    optimizer_group = "actor_optimizer"

    def __init__(self, cfg: AWRConfig, backend: str) -> None:
        self.cfg, self.settings = cfg, cfg.awr
        self.agent = make_agent(cfg, backend)
        self.buffer = ReplayBuffer(self.settings.buffer_size)

    def noise_shape(self, n: int) -> tuple[int, ...]:
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
        with phase("update"):
            return awr_update(self.agent, self.buffer, s, self.cfg.diffusion.denoising_steps, seed, itr)

    def end_iteration(self, itr: int) -> None:
        self.agent.end_iteration()

    def state_groups(self) -> dict[str, Any]:
        return {**self.agent.state_groups(), "replay_buffer": self.buffer.state()}


Trainer = AWRTrainer


# ---------------------------------------------------------------- dppo parity


def awr_inputs(cfg: AWRConfig, agent: Any, batch: int, seed: int) -> dict[str, np.ndarray]:
    """One AWR actor and critic minibatch (float32 values in the compute dtype): chunks sampled by `agent`,
    advantage weights through shared/algorithms/awr.py, TD-like targets, timesteps and training noise."""
    rng = np.random.default_rng([seed, 9])
    f32, s = np.float32, cfg.awr
    obs = as_compute(rng.uniform(-1, 1, (batch, cfg.cond_steps, cfg.obs_dim)).astype(f32))
    chunk_noise = as_compute(rng.standard_normal(noise_shape(cfg, batch)).astype(f32))
    actions = as_compute(agent.act(obs, chunk_noise, deterministic=False)["actions"])
    weights = advantage_weights(rng.standard_normal(batch).astype(f32), s.beta, s.max_adv_weight)
    t = rng.integers(0, cfg.diffusion.denoising_steps, batch).astype(np.int64)
    noise = as_compute(rng.standard_normal((batch, cfg.horizon_steps, cfg.action_dim)).astype(f32))
    targets = as_compute(rng.normal(0.0, 1.0, batch).astype(f32))
    return {"obs": obs, "actions": actions, "weights": as_compute(weights), "t": t, "noise": noise,
            "targets": targets}


def awr_loss_probes(agents: dict[str, Any], data: dict[str, np.ndarray]) -> dict[str, tuple[Any, Any]]:
    """{'critic': (torch probe, tf probe), 'actor': (...)}: the critic loss and the weighted denoising loss
    with layer outputs, input and parameter gradients."""
    from core_tf.algorithms.awr_diffusion import critic_loss as tf_critic_loss
    from core_tf.algorithms.rwr_diffusion import weighted_denoising_loss as tf_loss
    from core_tf.runtime.probe import probe as tf_probe
    from core_torch.algorithms.awr_diffusion import critic_loss as torch_critic_loss
    from core_torch.algorithms.rwr_diffusion import weighted_denoising_loss as torch_loss
    from core_torch.runtime.probe import probe as torch_probe

    out: dict[str, list[Any]] = {"critic": [], "actor": []}
    actor_in = {k: data[k] for k in ("obs", "actions", "t", "noise", "weights")}
    for backend, run, closs, aloss in (("torch", torch_probe, torch_critic_loss, torch_loss),
                                       ("tf", tf_probe, tf_critic_loss, tf_loss)):
        agent = agents[backend]
        out["critic"].append(run(agent.critic, lambda obs, targets, c=agent.critic, f=closs,
                                 p=agent.settings.critic_loss_all_pairs: f(c(obs), targets, p),
                                 {"obs": data["obs"], "targets": data["targets"]}))
        out["actor"].append(run(agent.model, lambda obs, actions, t, noise, weights, m=agent.model, f=aloss:
                                f(m, actions, obs, t, noise, weights), actor_in))
    return {k: (v[0], v[1]) for k, v in out.items()}


def parity_quantities(cfg: AWRConfig, agents: dict[str, Any], fresh: dict[str, Any], init: OrderedDict,
                      batch: int, seed: int, updates: int = 3) -> Quantities:
    """`dppo parity`'s AWR section: the agents reset to `init` with fresh optimizers, then AWR's sampled chunks
    and values, both losses with every gradient, and a few critic-then-actor updates, end to end and
    teacher-forced."""
    for b, agent in agents.items():
        agent.load_groups({**fresh[b], "model": init}, 0)
    data = awr_inputs(cfg, agents["torch"], batch, seed)
    q: Quantities = {}
    for det in (False, True):
        noise = as_compute(np.random.default_rng([seed, 10]).standard_normal(
            (cfg.diffusion.denoising_steps + 1, batch, cfg.horizon_steps, cfg.action_dim)).astype(np.float32))
        acts = {b: agents[b].act(data["obs"], noise, deterministic=det)["actions"] for b in ("torch", "tf")}
        q[("awr/act", f"deterministic={det}")] = (acts["torch"], acts["tf"])
    q[("awr/values", "V(s)")] = (agents["torch"].values(data["obs"]), agents["tf"].values(data["obs"]))
    for name, probes in awr_loss_probes(agents, data).items():
        q.update(probe_quantities(f"awr/{name}_loss", *probes))
    critic_batch = {"obs": data["obs"], "targets": data["targets"]}
    actor_batch = {k: data[k] for k in ("obs", "actions", "t", "noise", "weights")}
    for i in range(updates):
        agents["tf_forced"].load_groups(agents["torch"].state_groups(), 0)
        losses = {b: (a.update_critic(critic_batch)["critic_loss"], a.update_actor(actor_batch, True)["actor_loss"])
                  for b, a in agents.items()}
        for j, name in enumerate(("critic loss", "actor loss")):
            q[("awr/update", f"{name} update {i}")] = (losses["torch"][j], losses["tf"][j])
            q[("awr/forced/update", f"{name} update {i}")] = (losses["torch"][j], losses["tf_forced"][j])
        groups = {b: a.state_groups()["model"] for b, a in agents.items()}
        for name, value in groups["torch"].items():
            q[("awr/forced/update", f"{name} update {i}")] = (value, groups["tf_forced"][name])
            if i == updates - 1:
                q[("awr/update", name)] = (value, groups["tf"][name])
    return q
