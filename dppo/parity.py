"""Torch-vs-TF comparison engine behind `dppo parity` and the parity test suite.

Both twins get the same canonical parameters and the same numpy inputs and noise (float32 values);
every compared quantity is measured by each twin in float32 and again in float64 and judged by the
one rule of shared/tolerances.py (see dppo/parity_report.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from dppo.models import ModelPlan, build_critic, build_policy, canonical_init, canonical_io, model_plan
from dppo.parity_report import ParityReport, Quantities, probe_quantities, twin_precision
from shared import tolerances as tol
from shared.precision import as_compute
from shared.settings import (
    AWRConfig,
    DQLConfig,
    EvalConfig,
    FinetuneConfig,
    LRSchedulerConfig,
    PretrainConfig,
    RWRConfig,
)

AnyConfig = PretrainConfig | FinetuneConfig | RWRConfig | AWRConfig | EvalConfig


# ---------------------------------------------------------------- inputs
@dataclass
class PolicyInputs:
    """One batch of everything the policy consumes, drawn once in numpy."""

    x0: np.ndarray  # (B, Ta, Da) clean action chunk in [-1, 1]
    xt: np.ndarray  # (B, Ta, Da) noisy chunk fed to the network
    state: np.ndarray  # (B, To, Do)
    t: np.ndarray  # (B,) int64 timesteps
    noise: np.ndarray  # (B, Ta, Da) training noise
    cotangent: np.ndarray  # (B, Ta, Da) weights turning the output into a scalar
    chain_noise: np.ndarray  # (S + 1, B, Ta, Da)


def policy_inputs(plan: ModelPlan, batch: int, seed: int) -> PolicyInputs:
    c = plan.diffusion
    rng = np.random.default_rng(seed)
    chunk = (batch, c.horizon_steps, c.action_dim)
    steps = c.ddim_steps if c.use_ddim else c.denoising_steps

    def f32(a: np.ndarray) -> np.ndarray:  # float32 values, held in the compute dtype
        return as_compute(a.astype(np.float32))

    return PolicyInputs(
        x0=f32(rng.uniform(-1, 1, chunk)),
        xt=f32(rng.standard_normal(chunk)),
        state=f32(rng.uniform(-1, 1, (batch, c.cond_steps, c.obs_dim))),
        t=rng.integers(0, c.denoising_steps, batch).astype(np.int64),
        noise=f32(rng.standard_normal(chunk)),
        cotangent=f32(rng.standard_normal(chunk)),
        chain_noise=f32(rng.standard_normal((steps + 1, *chunk))),
    )


# ---------------------------------------------------------------- twins
def build_twins(plan: ModelPlan, seed: int) -> dict[str, dict[str, Any]]:
    """{'torch': {...}, 'tf': {...}} policies (and critics) loaded from one canonical init."""
    policy_params, critic_params = canonical_init(plan, seed)
    twins: dict[str, dict[str, Any]] = {}
    for backend in ("torch", "tf"):
        io = canonical_io(backend)
        policy = build_policy(backend, plan.diffusion)
        io.load_state(policy, policy_params, "policy")
        twins[backend] = {"policy": policy}
        if plan.critic is not None:
            critic = build_critic(backend, plan.critic)
            io.load_state(critic, critic_params, "critic")
            twins[backend]["critic"] = critic
    return twins


def policy_probes(twins: dict[str, dict[str, Any]], x: PolicyInputs) -> dict[str, dict[str, Any]]:
    """Network forward/backward and loss forward/backward on each backend."""
    from core_tf.probe import probe as tf_probe
    from core_torch.probe import probe as torch_probe

    out: dict[str, dict[str, Any]] = {}
    for backend, run in (("torch", torch_probe), ("tf", tf_probe)):
        policy = twins[backend]["policy"]
        net = policy.network
        out[backend] = {
            "network": run(net, lambda xt, t, state, n=net: n(xt, t, state),
                           {"xt": x.xt, "t": x.t, "state": x.state}, x.cotangent),
            "loss": run(policy, lambda x0, state, t, noise, p=policy: p.loss(x0, state, t, noise),
                        {"x0": x.x0, "state": x.state, "t": x.t, "noise": x.noise}),
        }
    return out


def sampler_chains(twins: dict[str, dict[str, Any]], x: PolicyInputs, deterministic: bool,
                   min_sampling_std: float) -> dict[str, np.ndarray]:
    import torch

    th = twins["torch"]["policy"].sample(torch.from_numpy(x.state), torch.from_numpy(x.chain_noise),
                                          deterministic=deterministic, min_sampling_std=min_sampling_std,
                                          return_chain=True)
    tf_ = twins["tf"]["policy"].sample(x.state, x.chain_noise, deterministic=deterministic,
                                       min_sampling_std=min_sampling_std, return_chain=True)
    return {"torch": th.chains.numpy(), "tf": tf_.chains.numpy()}


def lr_values(scheduler: LRSchedulerConfig, max_lr: float, num_steps: int) -> dict[str, np.ndarray]:
    """Learning rate at steps 0..num_steps-1: shared/, a torch optimizer, a Keras schedule."""
    import torch

    from core_tf.lr_schedule import CosineAnnealingWarmupRestarts as KerasSchedule
    from core_torch.lr_scheduler import CosineAnnealingWarmupRestarts as TorchScheduler

    schedule = scheduler.schedule(max_lr)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=max_lr)
    sched = TorchScheduler(opt, schedule)
    torch_lrs = []
    for _ in range(num_steps):
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    steps_per_update = 3  # Keras counts batches; the schedule must only move once per update
    keras_sched = KerasSchedule(schedule, num_steps, steps_per_update)
    keras_lrs = keras_sched(np.arange(num_steps) * steps_per_update + steps_per_update - 1).numpy()
    return {"shared": schedule.table(num_steps), "torch": np.array(torch_lrs), "tf": keras_lrs}


def run_parity(cfg: AnyConfig, seed: int = 0, batch: int = 8) -> ParityReport:
    """Everything `dppo parity` checks for one config (a Gaussian policy skips the diffusion sections)."""
    return TwinBench(cfg, batch).report(seed)


class TwinBench:
    """The twins a config describes, built once per precision (so TF compiles once) and re-initialised
    for every seed: one gate run is `report(seed)`; the flake hunt calls it for thousands of seeds."""

    def __init__(self, cfg: AnyConfig, batch: int = 8) -> None:
        if not isinstance(cfg, PretrainConfig):  # parity compares twins from one canonical initialisation
            cfg = dataclasses.replace(cfg, base_policy_path=None)
        self.cfg, self.batch = cfg, batch
        self._lr_tables = {name: lr_values(scheduler, max_lr, _lr_horizon(scheduler))
                           for name, max_lr, scheduler in _lr_blocks(cfg)}
        self._benches: dict[type, _Bench] = {}
        for dt in (np.float32, np.float64):
            with twin_precision(dt):
                self._benches[dt] = _Bench(cfg, batch)

    def report(self, seed: int) -> ParityReport:
        quantities = []
        for dt in (np.float32, np.float64):
            with twin_precision(dt):
                quantities.append(self._benches[dt].quantities(seed))
        report = ParityReport()
        report.add(*quantities)
        for name, lrs in self._lr_tables.items():  # the same for every seed: computed once
            report.add_table(f"lr/{name}", "torch vs shared", lrs["shared"], lrs["torch"], tol.SCHEDULE_RTOL)
            report.add_table(f"lr/{name}", "tf vs shared", lrs["shared"], lrs["tf"], tol.SCHEDULE_RTOL)
        return report


class _Bench:
    """Twins of one config in the current compute precision; `quantities(seed)` measures one gate run."""

    def __init__(self, cfg: AnyConfig, batch: int) -> None:
        self.cfg, self.batch = cfg, batch
        self.plan = model_plan(cfg)
        self.twins = build_twins(self.plan, 0) if self.plan is not None else None
        self.pretrain = _pretrain_backends(cfg, self.plan) if isinstance(cfg, PretrainConfig) else None
        self.agents = None
        if isinstance(cfg, FinetuneConfig):
            from dppo.agents import initial_params, make_agent

            init = initial_params(cfg)
            self.agents = {b: make_agent(cfg, b.removesuffix("_forced"), init) for b in ("torch", "tf", "tf_forced")}
            self.fresh = {b: a.state_groups() for b, a in self.agents.items()}
        if isinstance(cfg, (RWRConfig, AWRConfig)):
            from dppo.agents import make_agent, regression_initial_params

            init = regression_initial_params(cfg)
            self.agents = {b: make_agent(cfg, b.removesuffix("_forced"), init) for b in ("torch", "tf", "tf_forced")}
            self.fresh = {b: a.state_groups() for b, a in self.agents.items()}

    def quantities(self, seed: int) -> Quantities:
        q: Quantities = {}
        if self.plan is not None:
            policy_params, critic_params = canonical_init(self.plan, seed)
            for backend, twin in self.twins.items():
                io = canonical_io(backend)
                io.load_state(twin["policy"], policy_params, "policy")
                if "critic" in twin:
                    io.load_state(twin["critic"], critic_params, "critic")
            q.update(_policy_quantities(self.twins, self.plan, self.batch, seed))
            if self.pretrain is not None:
                for be in self.pretrain.values():
                    be.load_groups(_fresh_pretrain_groups(be, policy_params), 0)
                q.update(_train_step_quantities(self.cfg, self.pretrain, policy_inputs(self.plan, self.batch, seed)))
        if self.agents is not None and isinstance(self.cfg, (RWRConfig, AWRConfig)):
            from dppo.agents import regression_initial_params

            init = regression_initial_params(dataclasses.replace(self.cfg, seed=seed))
            for b, agent in self.agents.items():
                agent.load_groups({**self.fresh[b], "model": init}, 0)
            measure = _rwr_quantities if isinstance(self.cfg, RWRConfig) else _awr_quantities
            q.update(measure(self.cfg, self.agents, self.batch, seed))
        elif self.agents is not None:
            from dppo.agents import initial_params

            init = initial_params(dataclasses.replace(self.cfg, seed=seed))
            for b, agent in self.agents.items():
                agent.load_groups({**self.fresh[b], "model": init}, 0, 0)
            q.update(_ppo_quantities(self.cfg, self.agents, self.batch, seed))
        return q


def _pretrain_backends(cfg: PretrainConfig, plan: ModelPlan, steps: int = 3) -> dict[str, Any]:
    from core_tf.pretrain import PretrainBackend as TFBackend
    from core_torch.pretrain import PretrainBackend as TorchBackend

    train = cfg.train
    kwargs = dict(config=plan.diffusion, init_params=canonical_init(plan, 0)[0],
                  learning_rate=train.learning_rate, weight_decay=train.weight_decay,
                  schedule=train.lr_scheduler.schedule(train.learning_rate), steps_per_epoch=1,
                  max_grad_norm=train.max_grad_norm)
    return {"torch": TorchBackend(**kwargs), "tf": TFBackend(**kwargs, num_epochs=steps + 1),
            "tf_forced": TFBackend(**kwargs, num_epochs=steps + 1)}


def _fresh_pretrain_groups(backend: Any, params: dict[str, np.ndarray]) -> dict[str, Any]:
    """Model and EMA at `params`, optimizer state zero at step 0."""
    opt = backend.state_groups()["optimizer"]
    zeros = {k: (np.zeros_like(v) if k != "step" else np.array(0, np.int64)) for k, v in opt.items()}
    return {"model": params, "ema": params, "optimizer": zeros}


def _policy_quantities(twins: dict[str, dict[str, Any]], plan: ModelPlan, batch: int, seed: int) -> Quantities:
    """The diffusion network, its loss, sampling chains and the critic."""
    inputs = policy_inputs(plan, batch, seed)
    probes = policy_probes(twins, inputs)
    q = probe_quantities("network", probes["torch"]["network"], probes["tf"]["network"])
    q.update(probe_quantities("loss", probes["torch"]["loss"], probes["tf"]["loss"]))
    for deterministic, min_std in ((True, 1e-3), (False, 0.1)):
        chains = sampler_chains(twins, inputs, deterministic, min_std)
        label = "deterministic" if deterministic else f"stochastic(min_std={min_std})"
        for i in range(chains["torch"].shape[1]):
            q[("sampler", f"{label} chain[{i}]")] = (chains["torch"][:, i], chains["tf"][:, i])
    if plan.critic is not None:
        from core_tf.probe import probe as tf_probe
        from core_torch.probe import probe as torch_probe

        critic_probes = [run(twins[b]["critic"], lambda state, c=twins[b]["critic"]: c(state),
                             {"state": inputs.state}) for b, run in (("torch", torch_probe), ("tf", tf_probe))]
        q.update(probe_quantities("critic", *critic_probes))
    return q


def _train_step_quantities(cfg: PretrainConfig, backends: dict[str, Any], x: PolicyInputs,
                           steps: int = 3) -> Quantities:
    """A few AdamW steps of the pre-training loss (with EMA): end to end, and teacher-forced (the
    third backend, TF, restarts every step from torch's parameters, EMA and optimizer state)."""
    q: Quantities = {}
    for i in range(steps):
        backends["tf_forced"].load_groups(backends["torch"].state_groups(), i)
        losses = {}
        for name, be in backends.items():
            losses[name] = be.train_step(x.x0, x.state, x.t, x.noise)
            be.end_epoch()
            be.ema_update(cfg.ema.decay)
        q[("train_step", f"loss step {i}")] = (losses["torch"], losses["tf"])
        q[("train_step/forced", f"loss step {i}")] = (losses["torch"], losses["tf_forced"])
        groups = {name: be.state_groups() for name, be in backends.items()}
        for group in ("model", "ema"):
            for name, value in groups["torch"][group].items():
                q[(f"train_step/forced/{group}", f"{name} step {i}")] = (value, groups["tf_forced"][group][name])
                if i == steps - 1:
                    q[(f"train_step/{group}", name)] = (value, groups["tf"][group][name])
    return q


def _ppo_quantities(cfg: FinetuneConfig, agents: dict[str, Any], batch: int, seed: int,
                    updates: int = 3) -> Quantities:
    """Sampled actions/chains, values and log-probs, then a few PPO minibatch updates, end to end and
    teacher-forced (tf_forced restarts each update from torch's parameters and optimizer state)."""
    from dppo.agents import bc_noise_shape, noise_shape

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


def rwr_inputs(cfg: RWRConfig, agent: Any, batch: int, seed: int) -> dict[str, np.ndarray]:
    """One RWR minibatch (float32 values in the compute dtype): chunks sampled by `agent`, weights from
    random returns through shared/rwr.py (so both the clipped and the unclipped branch occur), and the
    timesteps and training noise the driver would draw."""
    from dppo.agents import noise_shape
    from dppo.rwr import rwr_minibatch_noise
    from shared.rwr import reward_weights

    rng = np.random.default_rng([seed, 7])
    f32, s = np.float32, cfg.rwr
    obs = as_compute(rng.uniform(-1, 1, (batch, cfg.cond_steps, cfg.obs_dim)).astype(f32))
    chunk_noise = as_compute(rng.standard_normal(noise_shape(cfg, batch)).astype(f32))
    actions = as_compute(agent.act(obs, chunk_noise, deterministic=False)["actions"])
    weights = reward_weights(rng.standard_normal(batch), s.beta, s.max_reward_weight)
    t, noise = rwr_minibatch_noise(seed, 0, 0, 0, batch, cfg.diffusion.denoising_steps,
                                   (cfg.horizon_steps, cfg.action_dim))
    return {"obs": obs, "actions": actions, "weights": as_compute(weights), "t": t, "noise": noise}


def rwr_loss_probes(agents: dict[str, Any], data: dict[str, np.ndarray]) -> tuple[Any, Any]:
    """(torch probe, tf probe) of the weighted denoising loss: layers, loss, input and parameter gradients."""
    from core_tf.probe import probe as tf_probe
    from core_tf.rwr_diffusion import weighted_denoising_loss as tf_loss
    from core_torch.probe import probe as torch_probe
    from core_torch.rwr_diffusion import weighted_denoising_loss as torch_loss

    out = []
    for backend, run, loss in (("torch", torch_probe, torch_loss), ("tf", tf_probe, tf_loss)):
        model = agents[backend].model
        out.append(run(model, lambda obs, actions, t, noise, weights, m=model, f=loss: f(m, actions, obs, t, noise,
                                                                                          weights), data))
    return out[0], out[1]


def _rwr_quantities(cfg: RWRConfig, agents: dict[str, Any], batch: int, seed: int, updates: int = 3) -> Quantities:
    """RWR's sampled chunks, its weighted loss with every gradient, and a few AdamW updates, end to end and
    teacher-forced (tf_forced restarts each update from torch's parameters and optimizer state)."""
    from dppo.agents import noise_shape

    rng = np.random.default_rng(seed)
    obs = as_compute(rng.uniform(-1, 1, (batch, cfg.cond_steps, cfg.obs_dim)).astype(np.float32))
    noise = as_compute(rng.standard_normal(noise_shape(cfg, batch)).astype(np.float32))
    q: Quantities = {}
    for det in (False, True):
        acts = {b: agents[b].act(obs, noise, deterministic=det)["actions"] for b in ("torch", "tf")}
        q[("rwr/act", f"deterministic={det}")] = (acts["torch"], acts["tf"])
    data = rwr_inputs(cfg, agents["torch"], batch, seed)
    q.update(probe_quantities("rwr/loss", *rwr_loss_probes(agents, data)))
    for i in range(updates):
        agents["tf_forced"].load_groups(agents["torch"].state_groups(), 0)
        losses = {b: a.update(data)["loss"] for b, a in agents.items()}
        q[("rwr/update", f"loss update {i}")] = (losses["torch"], losses["tf"])
        q[("rwr/forced/update", f"loss update {i}")] = (losses["torch"], losses["tf_forced"])
        groups = {b: a.state_groups()["model"] for b, a in agents.items()}
        for name, value in groups["torch"].items():
            q[("rwr/forced/update", f"{name} update {i}")] = (value, groups["tf_forced"][name])
            if i == updates - 1:
                q[("rwr/update", name)] = (value, groups["tf"][name])
    return q


def awr_inputs(cfg: AWRConfig, agent: Any, batch: int, seed: int) -> dict[str, np.ndarray]:
    """One AWR actor and critic minibatch (float32 values in the compute dtype): chunks sampled by `agent`,
    advantage weights through shared/awr.py, TD-like targets, timesteps and training noise."""
    from dppo.agents import noise_shape
    from shared.awr import advantage_weights

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
    from core_tf.awr_diffusion import critic_loss as tf_critic_loss
    from core_tf.probe import probe as tf_probe
    from core_tf.rwr_diffusion import weighted_denoising_loss as tf_loss
    from core_torch.awr_diffusion import critic_loss as torch_critic_loss
    from core_torch.probe import probe as torch_probe
    from core_torch.rwr_diffusion import weighted_denoising_loss as torch_loss

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


def _awr_quantities(cfg: AWRConfig, agents: dict[str, Any], batch: int, seed: int, updates: int = 3) -> Quantities:
    """AWR's sampled chunks and values, both losses with every gradient, and a few critic-then-actor
    updates, end to end and teacher-forced."""
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


def _lr_blocks(cfg: AnyConfig) -> list[tuple[str, float, LRSchedulerConfig]]:
    """(scheduler key, peak lr, scheduler) for each schedule the config trains with."""
    if isinstance(cfg, PretrainConfig):
        return [("lr_scheduler", cfg.train.learning_rate, cfg.train.lr_scheduler)]
    if isinstance(cfg, RWRConfig):
        return [("lr_scheduler", cfg.train.lr, cfg.train.lr_scheduler)]
    if isinstance(cfg, (FinetuneConfig, AWRConfig, DQLConfig)):
        t = cfg.train
        return [("actor_lr_scheduler", t.actor_lr, t.actor_lr_scheduler),
                ("critic_lr_scheduler", t.critic_lr, t.critic_lr_scheduler)]
    return []


def _lr_horizon(scheduler: LRSchedulerConfig) -> int:
    """Enough steps to cover three cycles (capped so the check stays fast)."""
    first, mult = scheduler.first_cycle_steps, scheduler.cycle_mult
    return int(min(first * (1 + mult + mult * mult) + 1, 20000))
