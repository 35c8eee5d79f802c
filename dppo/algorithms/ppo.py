"""PPO fine-tuning (DPPO, DPPO with the exact likelihood, Gaussian PPO): its agents, its starting weights and its
part of the fine-tuning loop, read top to bottom like CleanRL: collect n_steps x n_envs policy steps (the loop
of dppo/training/finetune.py), score them (values, log-probs), scale rewards, GAE, then update_epochs of
shuffled minibatches. The minibatch order is drawn in numpy keyed by (seed, iteration, epoch), so torch and TF
runs see the same numbers. The driver of the `ppo` and `ppo_exact` entries of shared/settings/algorithms.py.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.algorithms.agents import noise_shape
from dppo.algorithms.registry import backend_class
from dppo.algorithms.starting_weights import base_policy_params, dppo_spec
from dppo.checkpoints.formats import read_checkpoint
from dppo.parity.report import Quantities
from dppo.runs.phases import phase
from shared import tolerances as tol
from shared.algorithms.returns import RunningRewardScaler, gae
from shared.checkpoint import Checkpoint, check_strict
from shared.data import observations as ob
from shared.data.random_shifts import apply_shifts, draw_shifts
from shared.diffusion.eta import eta_init, eta_spec
from shared.errors import CheckpointError, ConfigError, TrainingDivergedError
from shared.param_spec import torch_default_init
from shared.param_spec.families import family_init_over, network_spec
from shared.precision import as_compute
from shared.settings import FinetuneConfig, PPOSettings

# ---------------------------------------------------------------- agents and starting weights


def initial_params(cfg: FinetuneConfig) -> OrderedDict:
    """The canonical parameters a fine-tuning run starts from: a fresh init from cfg.seed, with the
    base policy (or a Gaussian PPO checkpoint) loaded over it when base_policy_path is set."""
    if not cfg.is_diffusion:
        return _gaussian_params(cfg)
    d = cfg.dppo
    spec = dppo_spec(cfg.diffusion.network, cfg.critic)
    init = family_init_over(torch_default_init(spec, cfg.seed), cfg.critic, cfg.seed, "critic.")  # a ViT critic's
    if d.eta is not None:  # upstream builds eta whenever model.eta is given (DDPM never reads it)
        spec.update(eta_spec(d.eta))
        init.update(eta_init(d.eta, cfg.seed))
    if cfg.base_policy_path:  # else a fresh policy (`dppo finetune` warns; parity and bench want it)
        init.update(base_policy_params(cfg.base_policy_path, spec, cfg))
    return init


def _gaussian_params(cfg: FinetuneConfig) -> OrderedDict:
    actor, critic = cfg.gaussian_actor, cfg.critic
    overrides = {"actor.logvar": math.log(actor.fixed_std**2)} if actor.learn_fixed_std else None
    spec = network_spec(actor, "actor.")
    spec.update(network_spec(critic, "critic."))  # CriticObs, or an image config's ViTCritic
    init = family_init_over(torch_default_init(spec, cfg.seed, overrides), actor, cfg.seed, "actor.", overrides)
    init = family_init_over(init, critic, cfg.seed, "critic.")
    if not cfg.base_policy_path:
        return init
    path = cfg.base_policy_path
    ckpt = read_checkpoint(path, cfg)
    weights = ckpt.group("model")
    if ckpt.meta.get("kind") == "finetune":  # a Gaussian PPO checkpoint: its actor and critic
        check_strict(spec, weights, f"base policy {path}")
        init.update(weights)
        return init
    # a Gaussian pre-training checkpoint (upstream's configs): its network.* is the actor, the critic starts fresh
    policy = OrderedDict((f"actor.{k[len('network.'):]}", v) for k, v in weights.items() if k.startswith("network."))
    if not policy:
        raise CheckpointError(f"{path} [model] holds no pre-trained Gaussian policy (network.* tensors)")
    expected = {k: v for k, v in spec.items() if k.startswith("actor.")}
    if "actor.logvar" not in policy:  # a fixed-std pre-training: the learned std starts from fixed_std
        expected.pop("actor.logvar", None)
    check_strict(expected, policy, f"base policy {path}")
    init.update(policy)
    return init


def build_agent(cfg: FinetuneConfig, backend: str, init: OrderedDict) -> Any:
    if cfg.is_exact:
        return backend_class(backend, "ppo_exact_diffusion.PPOExactDiffusionAgent")(
            cfg.diffusion, cfg.critic, cfg.ppo, cfg.dppo, cfg.model.likelihood(), init)
    if cfg.is_diffusion:
        return backend_class(backend, "ppo_diffusion.PPODiffusionAgent")(cfg.diffusion, cfg.critic, cfg.ppo, cfg.dppo,
                                                                          init)
    return backend_class(backend, "ppo_gaussian.PPOGaussianAgent")(cfg.gaussian_actor, cfg.critic, cfg.ppo, init,
                                                                    cfg.model.randn_clip_value)


def bc_noise_shape(cfg: FinetuneConfig) -> tuple[int, ...] | None:
    """Per-row shape (S+1, Ta, Da) of the teacher-chain noise the BC term needs, or None without BC."""
    if not (cfg.is_diffusion and cfg.train.use_bc_loss):
        return None
    return noise_shape(cfg, 1)[:1] + (cfg.horizon_steps, cfg.action_dim)


# ---------------------------------------------------------------- scoring and updates


# Upstream builds its RunningRewardScaler(n_envs) without passing train.gamma, so its running
# return is always discounted with the scaler's default.
UPSTREAM_REWARD_SCALE_GAMMA = 0.99




def make_reward_scaler(s: PPOSettings) -> RunningRewardScaler | None:
    """The running reward scaler, discounting with train.reward_scale_gamma (None: upstream's 0.99)."""
    if not s.reward_scale_running:
        return None
    gamma = UPSTREAM_REWARD_SCALE_GAMMA if s.reward_scale_gamma is None else s.reward_scale_gamma
    return RunningRewardScaler(s.n_envs, gamma=gamma)




def ppo_update(agent: Any, data: dict[str, Any], s: PPOSettings, seed: int, itr: int) -> dict[str, float]:
    """update_epochs over shuffled minibatches of the flattened rollout; stops early past target_kl. With
    train.grad_accumulate = k (upstream's image agents), the gradients of k consecutive minibatches are summed
    and the optimizers step after the k-th (minibatch index within the epoch b with (b + 1) % k == 0), where the
    KL test is made too; what is left at an epoch's end carries into the next epoch's sum, as upstream's."""
    total = len(data["advantages"])
    num_batches = max(1, total // s.batch_size)  # the remainder is skipped, as upstream
    update_actor = itr >= s.n_critic_warmup_itr
    logs: dict[str, list[float]] = {}
    for epoch in range(s.update_epochs):
        order = np.random.default_rng([seed, itr, epoch, 3]).permutation(total)
        stop = False
        for b in range(num_batches):
            rows = order[b * s.batch_size:(b + 1) * s.batch_size]
            steps = (b + 1) % s.grad_accumulate == 0
            terms = agent.update({k: ob.take(v, rows) for k, v in data.items()}, update_actor, minibatch=b,
                                 **({} if s.grad_accumulate == 1 else {"apply": steps}))
            for k, v in terms.items():
                logs.setdefault(k, []).append(v)
            if not all(math.isfinite(v) for v in terms.values()):
                raise TrainingDivergedError(f"non-finite PPO loss at iteration {itr}, epoch {epoch}, batch {b}")
            if steps and s.target_kl is not None and terms["approx_kl"] > s.target_kl:
                stop = True
                break
        if stop:
            break
    return {k: float(np.mean(v)) for k, v in logs.items()}


def score_rollout(agent: Any, ro: dict[str, Any], s: PPOSettings, scaler: RunningRewardScaler | None,
                  seed: int = 0, itr: int = 0, bc_noise_shape: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """Values, old log-probs, scaled rewards, GAE; flattened to (T*N, ...) rows for the update. With
    train.augment, the rollout's camera frames are shifted once first (augment_rollout)."""
    T, N = ro["rewards"].shape
    if s.augment:
        ro = augment_rollout(ro, seed, itr)
    sc = score_steps(agent, ro, s, scaler)
    values, logprobs, advantages, returns = sc["values"], sc["logprobs"], sc["advantages"], sc["returns"]
    f32 = np.float32
    extra = {}
    if bc_noise_shape is not None:  # teacher-chain noise for the BC term, drawn once per rollout
        extra["bc_noise"] = np.random.default_rng([seed, itr, 4]).standard_normal((T * N, *bc_noise_shape)).astype(f32)
    return {"obs": ob.as_float(sc["obs"], f32), **{k: v.astype(f32) for k, v in sc["samples"].items()}, **extra,
            "logprobs": logprobs.astype(f32), "values": values.reshape(-1).astype(f32),
            "advantages": advantages.reshape(-1).astype(f32), "returns": returns.reshape(-1).astype(f32)}


def augment_rollout(ro: dict[str, Any], seed: int, itr: int) -> dict[str, Any]:
    """The rollout with its observed frames shifted (upstream's train.augment: RandomShiftsAug applied once to
    the (steps, envs, history) frames, each frame its own shift over all its channels, before the values, the
    log-probabilities and the updates read them). Shifts drawn in numpy keyed by (seed, iteration); the frames stay
    uint8. The envs' current observation (the bootstrap value's) is not shifted, as upstream's."""
    obs = ro["obs"]
    if not ob.is_image(obs):
        raise ConfigError("train.augment shifts camera frames: this config's observations have none")
    rgb = obs["rgb"]  # (T, N, To, C, H, W)
    frames = rgb.reshape(-1, *rgb.shape[-3:])
    shifts = draw_shifts(np.random.default_rng([seed, itr, 7]), len(frames))[0]
    return {**ro, "obs": {"state": obs["state"], "rgb": apply_shifts(frames, shifts).reshape(rgb.shape)}}


def score_steps(agent: Any, ro: dict[str, Any], s: PPOSettings,
                scaler: RunningRewardScaler | None) -> dict[str, np.ndarray]:
    """The rollout's observations and samples flattened to (T*N, ...) rows, their values (T, N) and
    log-probs (T*N, ...), scaled rewards, advantages and returns (T, N, float64), as upstream: the
    scaler sees first[:-1], whose row 0 is carried over."""
    T, N = ro["rewards"].shape
    flat_obs = ob.flatten_steps(ro["obs"])
    flat_samples = {k: v.reshape(T * N, *v.shape[2:]) for k, v in ro["samples"].items()}
    with phase("log-probabilities and values"):
        values, logprobs = evaluate_in_chunks(agent, flat_obs, flat_samples, s.logprob_batch_size)
        next_value = np.asarray(agent.value(ro["next_obs"]), np.float64)
    values = np.asarray(values, np.float64).reshape(T, N)
    with phase("GAE and returns"):
        rewards = ro["rewards"]
        if scaler is not None:
            rewards = scaler(rewards.T, ro["first"][:-1].T).T
        advantages, returns = gae(rewards * s.reward_scale_const, values, next_value, ro["terminated"], s.gamma,
                                  s.gae_lambda)
    return {"obs": flat_obs, "samples": flat_samples, "values": values, "logprobs": logprobs, "rewards": rewards,
            "advantages": advantages, "returns": returns}


def evaluate_in_chunks(agent: Any, obs: ob.Obs, samples: dict[str, np.ndarray],
                       chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """agent.evaluate over consecutive blocks of `chunk` rows (train.logprob_batch_size), concatenated."""
    parts = [agent.evaluate(ob.take(obs, slice(i, i + chunk)), {k: v[i:i + chunk] for k, v in samples.items()})
             for i in range(0, ob.batch_len(obs), chunk)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def explained_variance(values: np.ndarray, returns: np.ndarray) -> float:
    var = np.var(returns)
    return float("nan") if var == 0 else float(1.0 - np.var(returns - values) / var)




# ---------------------------------------------------------------- PPO's part of the loop


class PPOTrainer:
    """PPO's part of the fine-tuning loop (DPPO and Gaussian PPO): score the rollout, GAE, minibatch updates.

    What run_iterations asks of a trainer: `algorithm`, `optimizer_group` (the checkpoint group a
    weights-only checkpoint lacks), `settings` (the loop's keys), `agent` (act, seed_rng),
    `noise_shape(n)`, `restore(ckpt, done_itr)`, `learning_rates()`, `train(rollout, itr)`,
    `end_iteration(itr)` and `state_groups()`."""

    algorithm = "ppo"
    optimizer_group = "actor_optimizer"

    def __init__(self, cfg: FinetuneConfig, backend: str) -> None:
        self.cfg, self.settings = cfg, cfg.ppo
        self.algorithm = "ppo_exact" if cfg.is_exact else "ppo"  # checkpoints record it
        self.agent = build_agent(cfg, backend, initial_params(cfg))
        self.scaler = make_reward_scaler(self.settings)
        self.bc_shape = bc_noise_shape(cfg)

    def noise_shape(self, n: int) -> tuple[int, ...]:
        return noise_shape(self.cfg, n)

    def restore(self, ckpt: Checkpoint, done_itr: int) -> None:
        self.agent.load_groups(ckpt.groups, *_scheduler_steps(done_itr + 1, self.settings))
        if self.scaler is not None and "reward_scaler" in ckpt.groups:
            self.scaler.load_state(ckpt.groups["reward_scaler"])

    def learning_rates(self) -> dict[str, float]:
        return {"actor_lr": self.agent.actor_lr, "critic_lr": self.agent.critic_lr}

    def train(self, ro: dict[str, Any], itr: int, seed: int) -> dict[str, float]:
        s = self.settings
        data = score_rollout(self.agent, ro, s, self.scaler, seed, itr, self.bc_shape)
        with phase("update"):
            record = ppo_update(self.agent, data, s, seed, itr)
        record["explained_variance"] = explained_variance(data["values"], data["returns"])
        return record

    def end_iteration(self, itr: int) -> None:
        self.agent.end_iteration(itr >= self.settings.n_critic_warmup_itr)

    def state_groups(self) -> dict[str, Any]:
        groups = self.agent.state_groups()
        if self.scaler is not None:
            groups["reward_scaler"] = self.scaler.state()
        return groups




def _scheduler_steps(iterations_done: int, s: PPOSettings) -> tuple[int, int]:
    """(actor, critic) scheduler steps taken after `iterations_done` iterations."""
    return max(0, iterations_done - s.n_critic_warmup_itr), iterations_done


Trainer = PPOTrainer


# ---------------------------------------------------------------- dppo parity


def parity_quantities(cfg: FinetuneConfig, agents: dict[str, Any], fresh: dict[str, Any], init: OrderedDict,
                      batch: int, seed: int, updates: int = 3) -> Quantities:
    """`dppo parity`'s PPO section: the agents (torch, tf, tf_forced) reset to `init` with fresh optimizers, then
    sampled actions/chains, values and log-probs, then a few PPO minibatch updates, end to end and
    teacher-forced (tf_forced restarts each update from torch's parameters and optimizer state)."""
    for b, agent in agents.items():
        agent.load_groups({**fresh[b], "model": init}, 0, 0)
    rng = np.random.default_rng(seed)
    f32 = np.float32
    obs = as_compute(rng.uniform(-1, 1, (batch, cfg.cond_steps, cfg.obs_dim)).astype(f32))
    noise = as_compute(rng.standard_normal(noise_shape(cfg, batch)).astype(f32))
    twins = {b: agents[b] for b in ("torch", "tf")}
    samples = {b: a.act(obs, noise, deterministic=False) for b, a in twins.items()}
    q: Quantities = {("ppo/act", k): (samples["torch"][k], samples["tf"][k]) for k in samples["torch"]}
    scored = {b: a.evaluate(obs, samples["torch"]) for b, a in twins.items()}
    q[("ppo/evaluate", "values")] = (scored["torch"][0], scored["tf"][0])
    q[("ppo/evaluate", "logprobs")] = (scored["torch"][1], scored["tf"][1])
    data = {"obs": obs, **samples["torch"], "values": scored["torch"][0],
            "logprobs": scored["torch"][1] + as_compute(rng.normal(0, 0.05, scored["torch"][1].shape).astype(f32)),
            "advantages": as_compute(rng.standard_normal(batch).astype(f32)),
            "returns": as_compute(rng.standard_normal(batch).astype(f32))}
    bc_shape = bc_noise_shape(cfg)
    if bc_shape is not None:
        data["bc_noise"] = as_compute(rng.standard_normal((batch, *bc_shape)).astype(f32))
    for i in range(updates):
        # minibatch updates of one iteration: the schedules have not stepped (0 completed iterations)
        agents["tf_forced"].load_groups(agents["torch"].state_groups(), 0, 0)
        terms = {b: a.update(data, update_actor=True) for b, a in agents.items()}
        for k in terms["torch"]:
            floor = tol.operand_scale(k, data["advantages"])
            q[("ppo/loss", f"{k} update {i}")] = (terms["torch"][k], terms["tf"][k], floor)
            q[("ppo/forced/loss", f"{k} update {i}")] = (terms["torch"][k], terms["tf_forced"][k], floor)
        groups = {b: a.state_groups()["model"] for b, a in agents.items()}
        for name, value in groups["torch"].items():
            q[("ppo/forced/update", f"{name} update {i}")] = (value, groups["tf_forced"][name])
            if i == updates - 1:
                q[("ppo/update", name)] = (value, groups["tf"][name])
    return q
