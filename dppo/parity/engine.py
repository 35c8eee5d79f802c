"""Torch-vs-TF comparison engine behind `dppo parity` and the parity test suite.

Both twins get the same canonical parameters and the same numpy inputs and noise (float32 values);
every compared quantity is measured by each twin in float32 and again in float64 and judged by the
one rule of shared/tolerances.py (see dppo/parity/report.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from dppo.algorithms.agents import initial_params, make_agent
from dppo.algorithms.models import ModelPlan, build_critic, build_policy, canonical_init, canonical_io, model_plan
from dppo.algorithms.registry import algorithm_of, driver
from dppo.parity.report import ParityReport, Quantities, probe_quantities, twin_precision
from shared import tolerances as tol
from shared.errors import ConfigError
from shared.precision import as_compute
from shared.settings import GaussianPretrainConfig, GMMPretrainConfig, LRSchedulerConfig, PretrainConfig
from shared.settings.run import PolicyRunConfig

AnyConfig = PretrainConfig | GaussianPretrainConfig | PolicyRunConfig  # fine-tuning and eval: PolicyRunConfigs


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
    from core_tf.runtime.probe import probe as tf_probe
    from core_torch.runtime.probe import probe as torch_probe

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

    from core_tf.runtime.lr_schedule import CosineAnnealingWarmupRestarts as KerasSchedule
    from core_torch.runtime.lr_schedule import CosineAnnealingWarmupRestarts as TorchScheduler

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
        if isinstance(cfg, GMMPretrainConfig):
            raise ConfigError("dppo parity does not run GMM pre-training configs; their twins are compared by "
                              "parity_tests/test_gmm_parity.py")
        if isinstance(cfg, GaussianPretrainConfig):
            raise ConfigError("dppo parity does not run Gaussian pre-training configs; their twins are compared by "
                              "parity_tests/test_gaussian_pretrain_parity.py")
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
        entry = algorithm_of(cfg) if hasattr(cfg, "algorithm") else None
        if entry is not None and entry.parity_agents:  # the algorithm's own section: whole agents
            init = initial_params(cfg)
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
        if self.agents is not None:
            init = initial_params(dataclasses.replace(self.cfg, seed=seed))
            q.update(driver(self.cfg).parity_quantities(self.cfg, self.agents, self.fresh, init, self.batch, seed))
        return q


def _pretrain_backends(cfg: PretrainConfig, plan: ModelPlan, steps: int = 3) -> dict[str, Any]:
    from core_tf.algorithms.pretrain import PretrainBackend as TFBackend
    from core_torch.algorithms.pretrain import PretrainBackend as TorchBackend

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
        from core_tf.runtime.probe import probe as tf_probe
        from core_torch.runtime.probe import probe as torch_probe

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


def _lr_blocks(cfg: AnyConfig) -> list[tuple[str, float, LRSchedulerConfig]]:
    """(scheduler key, peak lr, scheduler) for each schedule the config trains with: every `train` key
    <name>lr_scheduler with its <name>lr (the plain lr_scheduler's: lr, or pre-training's learning_rate)."""
    train = getattr(cfg, "train", None)
    if train is None or not dataclasses.is_dataclass(train):
        return []
    blocks = []
    for key in (f.name for f in dataclasses.fields(train) if f.name.endswith("lr_scheduler")):
        prefix = key[:-len("lr_scheduler")]
        lr = getattr(train, f"{prefix}lr", None) if prefix else getattr(train, "lr", getattr(train, "learning_rate",
                                                                                             None))
        if lr is not None and getattr(train, key) is not None:
            blocks.append((key, lr, getattr(train, key)))
    return blocks


def _lr_horizon(scheduler: LRSchedulerConfig) -> int:
    """Enough steps to cover three cycles (capped so the check stays fast)."""
    first, mult = scheduler.first_cycle_steps, scheduler.cycle_mult
    return int(min(first * (1 + mult + mult * mult) + 1, 20000))
