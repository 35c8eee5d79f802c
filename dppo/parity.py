"""Torch-vs-TF comparison engine behind `dppo parity` and the parity test suite.

Both twins get the same canonical parameters and the same numpy inputs and noise;
every compared quantity becomes one row (max abs diff, relative diff, tolerance).
torch is the reference for the relative difference.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dppo.models import ModelPlan, build_critic, build_policy, canonical_init, canonical_io, model_plan
from shared import tolerances as tol
from shared.settings import EvalConfig, FinetuneConfig, LRSchedulerConfig, PretrainConfig


@dataclass
class Row:
    section: str
    name: str
    max_abs: float
    rel: float
    tol: float

    @property
    def ok(self) -> bool:
        return math.isfinite(self.rel) and self.rel <= self.tol


@dataclass
class ParityReport:
    rows: list[Row] = field(default_factory=list)

    def compare(self, section: str, name: str, reference: Any, other: Any, tolerance: float,
                scale_floor: float = tol.SCALE_FLOOR) -> Row:
        a, b = np.asarray(other, np.float64), np.asarray(reference, np.float64)
        if a.shape != b.shape:
            row = Row(section, f"{name} (shape {list(b.shape)} vs {list(a.shape)})", math.inf, math.inf, tolerance)
        elif not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            same = np.array_equal(a, b, equal_nan=True)
            row = Row(section, name, 0.0 if same else math.inf, 0.0 if same else math.inf, tolerance)
        else:
            row = Row(section, name, tol.max_abs_diff(a, b), tol.relative_diff(a, b, scale_floor), tolerance)
        self.rows.append(row)
        return row

    def missing(self, section: str, name: str, where: str) -> None:
        self.rows.append(Row(section, f"{name} (only in {where})", math.inf, math.inf, 0.0))

    def compare_probe(self, section: str, ref: Any, other: Any) -> None:
        """Layer outputs and output (forward tolerance), input and parameter gradients."""
        for name in ref.layers:
            if name in other.layers:
                self.compare(f"{section}/forward", name, ref.layers[name], other.layers[name], tol.FORWARD_RTOL)
            else:
                self.missing(f"{section}/forward", name, "torch")
        for name in set(other.layers) - set(ref.layers):
            self.missing(f"{section}/forward", name, "tf")
        self.compare(f"{section}/forward", "output", ref.output, other.output, tol.FORWARD_RTOL)
        for name, g in ref.input_grads.items():
            self.compare(f"{section}/grad_input", name, g, other.input_grads[name], tol.GRADIENT_RTOL)
        for name, g in ref.param_grads.items():
            self.compare(f"{section}/grad_param", name, g, other.param_grads[name], tol.GRADIENT_RTOL)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.failures

    def table(self) -> str:
        width = max([len(f"{r.section}  {r.name}") for r in self.rows] + [20])
        lines = [f"{'check':<{width}}  {'max_abs':>10}  {'rel':>10}  {'tol':>8}  ok"]
        for r in self.rows:
            lines.append(f"{r.section + '  ' + r.name:<{width}}  {r.max_abs:>10.3e}  {r.rel:>10.3e}  "
                         f"{r.tol:>8.1e}  {'yes' if r.ok else 'NO'}")
        worst = max(self.rows, key=lambda r: r.rel / r.tol if r.tol else math.inf)
        lines.append(f"{len(self.rows)} checks, {len(self.failures)} past tolerance; "
                     f"worst: {worst.section} {worst.name} rel={worst.rel:.3e} (tol {worst.tol:.0e})")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        def clean(x: float) -> float | str:
            return x if math.isfinite(x) else "inf"

        return {
            "ok": self.ok,
            "num_checks": len(self.rows),
            "num_failures": len(self.failures),
            "rows": [{**asdict(r), "max_abs": clean(r.max_abs), "rel": clean(r.rel), "ok": r.ok} for r in self.rows],
        }


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

    def f32(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32)

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


def run_parity(cfg: PretrainConfig | FinetuneConfig | EvalConfig, seed: int = 0, batch: int = 8) -> ParityReport:
    """Everything `dppo parity` checks for one config (a Gaussian policy skips the diffusion sections)."""
    if not isinstance(cfg, PretrainConfig):  # parity compares twins from one canonical initialisation
        cfg = dataclasses.replace(cfg, base_policy_path=None)
    report = ParityReport()
    plan = model_plan(cfg)
    if plan is not None:
        _policy_parity(report, plan, batch, seed, cfg)
    if isinstance(cfg, FinetuneConfig):
        _ppo_parity(report, cfg, batch, seed)
    for name, max_lr, scheduler in _lr_blocks(cfg):
        lrs = lr_values(scheduler, max_lr, _lr_horizon(scheduler))
        report.compare(f"lr/{name}", "torch vs shared", lrs["shared"], lrs["torch"], tol.SCHEDULE_RTOL)
        report.compare(f"lr/{name}", "tf vs shared", lrs["shared"], lrs["tf"], tol.SCHEDULE_RTOL)
    return report


def _policy_parity(report: ParityReport, plan: ModelPlan, batch: int, seed: int,
                   cfg: PretrainConfig | FinetuneConfig | EvalConfig) -> None:
    """The diffusion network, its loss, sampling chains, the critic and (pre-training) AdamW steps."""
    twins = build_twins(plan, seed)
    inputs = policy_inputs(plan, batch, seed)
    probes = policy_probes(twins, inputs)
    report.compare_probe("network", probes["torch"]["network"], probes["tf"]["network"])
    report.compare_probe("loss", probes["torch"]["loss"], probes["tf"]["loss"])

    for deterministic, min_std in ((True, 1e-3), (False, 0.1)):
        chains = sampler_chains(twins, inputs, deterministic, min_std)
        label = "deterministic" if deterministic else f"stochastic(min_std={min_std})"
        for i in range(chains["torch"].shape[1]):
            report.compare("sampler", f"{label} chain[{i}]", chains["torch"][:, i], chains["tf"][:, i],
                           tol.CHAIN_RTOL)

    if plan.critic is not None:
        from core_tf.probe import probe as tf_probe
        from core_torch.probe import probe as torch_probe

        critic_probes = [run(twins[b]["critic"], lambda state, c=twins[b]["critic"]: c(state),
                             {"state": inputs.state}) for b, run in (("torch", torch_probe), ("tf", tf_probe))]
        report.compare_probe("critic", *critic_probes)
    if isinstance(cfg, PretrainConfig):
        _train_step_parity(report, cfg, plan, inputs, seed)


def _train_step_parity(report: ParityReport, cfg: PretrainConfig, plan: ModelPlan, x: PolicyInputs, seed: int,
                       steps: int = 3) -> None:
    """A few AdamW steps of the pre-training loss (with EMA) on both backends."""
    from core_tf.pretrain import PretrainBackend as TFBackend
    from core_torch.pretrain import PretrainBackend as TorchBackend

    train = cfg.train
    kwargs = dict(config=plan.diffusion, init_params=canonical_init(plan, seed)[0],
                  learning_rate=train.learning_rate, weight_decay=train.weight_decay,
                  schedule=train.lr_scheduler.schedule(train.learning_rate), steps_per_epoch=1,
                  max_grad_norm=train.max_grad_norm)
    backends = {"torch": TorchBackend(**kwargs), "tf": TFBackend(**kwargs, num_epochs=steps + 1)}
    for i in range(steps):
        losses = {}
        for name, be in backends.items():
            losses[name] = be.train_step(x.x0, x.state, x.t, x.noise)
            be.end_epoch()
            be.ema_update(cfg.ema.decay)
        report.compare("train_step", f"loss step {i}", losses["torch"], losses["tf"], tol.TRAINING_RTOL)
    groups = {name: be.state_groups() for name, be in backends.items()}
    for group in ("model", "ema"):
        for name, value in groups["torch"][group].items():
            report.compare(f"train_step/{group}", name, value, groups["tf"][group][name], tol.TRAINING_RTOL)


def _ppo_parity(report: ParityReport, cfg: FinetuneConfig, batch: int, seed: int) -> None:
    """Fine-tuning agents from one init: sampled actions/chains, values and log-probs, one PPO minibatch update."""
    from dppo.agents import bc_noise_shape, make_agent, noise_shape

    agents = {b: make_agent(cfg, b) for b in ("torch", "tf")}
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (batch, cfg.cond_steps, cfg.obs_dim)).astype(np.float32)
    noise = rng.standard_normal(noise_shape(cfg, batch)).astype(np.float32)
    samples = {b: a.act(obs, noise, deterministic=False) for b, a in agents.items()}
    for k in samples["torch"]:
        report.compare("ppo/act", k, samples["torch"][k], samples["tf"][k], tol.CHAIN_RTOL)
    scored = {b: a.evaluate(obs, samples["torch"]) for b, a in agents.items()}
    report.compare("ppo/evaluate", "values", scored["torch"][0], scored["tf"][0], tol.FORWARD_RTOL)
    report.compare("ppo/evaluate", "logprobs", scored["torch"][1], scored["tf"][1], tol.FORWARD_RTOL)
    data = {"obs": obs, **samples["torch"], "values": scored["torch"][0],
            "logprobs": scored["torch"][1] + rng.normal(0, 0.05, scored["torch"][1].shape).astype(np.float32),
            "advantages": rng.standard_normal(batch).astype(np.float32),
            "returns": rng.standard_normal(batch).astype(np.float32)}
    bc_shape = bc_noise_shape(cfg)
    if bc_shape is not None:
        data["bc_noise"] = rng.standard_normal((batch, *bc_shape)).astype(np.float32)
    terms = {b: a.update(data, update_actor=True) for b, a in agents.items()}
    for k in terms["torch"]:
        scale = float(np.mean(np.abs(data["advantages"])))  # the loss normalizes standard-normal advantages
        report.compare("ppo/loss", k, terms["torch"][k], terms["tf"][k], *tol.loss_term_budget(k, scale))
    groups = {b: a.state_groups()["model"] for b, a in agents.items()}
    for name, value in groups["torch"].items():
        report.compare("ppo/update", name, value, groups["tf"][name], tol.TRAINING_RTOL)


def _lr_blocks(cfg: PretrainConfig | FinetuneConfig | EvalConfig) -> list[tuple[str, float, LRSchedulerConfig]]:
    """(scheduler key, peak lr, scheduler) for each schedule the config trains with."""
    if isinstance(cfg, PretrainConfig):
        return [("lr_scheduler", cfg.train.learning_rate, cfg.train.lr_scheduler)]
    if isinstance(cfg, FinetuneConfig):
        t = cfg.train
        return [("actor_lr_scheduler", t.actor_lr, t.actor_lr_scheduler),
                ("critic_lr_scheduler", t.critic_lr, t.critic_lr_scheduler)]
    return []


def _lr_horizon(scheduler: LRSchedulerConfig) -> int:
    """Enough steps to cover three cycles (capped so the check stays fast)."""
    first, mult = scheduler.first_cycle_steps, scheduler.cycle_mult
    return int(min(first * (1 + mult + mult * mult) + 1, 20000))
