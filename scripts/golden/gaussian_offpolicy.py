"""Section `gaussian_offpolicy`: upstream's off-policy fine-tuners of a Gaussian policy on fixed weights and a
fixed minibatch: SAC_Gaussian (critic, actor and temperature losses, tanh squashing after sampling),
RLPD_Gaussian (ensemble critic loss with and without the entropy backup, actor loss), IBRL_Gaussian (critic
loss over both proposals, actor loss, greedy / soft / deterministic acting) and CalQL_Gaussian (critic loss with
the calibrated regulariser, actor loss), each loss with its gradient w.r.t. the parameters its optimizer moves.

Upstream samples with torch.distributions.Normal(...).sample() / .rsample(): `D` inside model.common.gaussian is
replaced so that both return loc + scale * z with z popped from the noise queue (shape (B, Ta*Da), as our twins
take it). RLPD's and IBRL's torch.randperm (the two drawn members) returns a stored permutation; IBRL's
torch.multinomial (the soft pick) picks the pre-trained proposal where a stored uniform draw is below its weight,
the rule our twins apply to the same draw.

Upstream's RLPD and IBRL train `ensemble_params`, copies stacked from the members at construction; the
members' own weights are set here to the same values, so acting (which reads the members) and the losses
(which read the copies) see one set of weights.
"""

from __future__ import annotations

import dataclasses
import types

import numpy as np

from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec import (
    CriticObsActConfig,
    GaussianMLPConfig,
    critic_ensemble_spec,
    critic_obs_act_spec,
    gaussian_mlp_spec,
    torch_default_init,
)

B, TO, DO, TA, DA = 6, 2, 3, 2, 2
CHUNK = TA * DA
GAMMA, ALPHA, CLIP = 0.99, 0.3, 2.0
SAC_ACTOR = GaussianMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16), activation_type="ReLU", tanh_output=False,
                              std_min=0.0067, std_max=7.3891)
IBRL_ACTOR = GaussianMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16), activation_type="Mish", fixed_std=0.1)
DOUBLE_Q = CriticObsActConfig(TO * DO, mlp_dims=(16, 16), action_dim=DA, action_steps=TA, activation_type="ReLU",
                              use_layernorm=True)
SINGLE_Q = dataclasses.replace(DOUBLE_Q, double_q=False)
N_CRITICS, CQL_N, N_RAND = 4, 3, 5


def _inject(ctx: Context) -> None:
    """Normal.sample / rsample inside model.common.gaussian draw from the queue."""
    import model.common.gaussian as g
    import torch
    import torch.distributions as dist

    class InjectedNormal(dist.Normal):
        def _z(self) -> torch.Tensor:
            z = ctx.queue.popleft()
            assert tuple(z.shape) == tuple(self.loc.shape), (z.shape, self.loc.shape)
            return torch.from_numpy(np.array(z)).to(self.loc.dtype)

        def sample(self, sample_shape=torch.Size()):  # noqa: B008 (torch's own signature)
            with torch.no_grad():
                return self.loc + self.scale * self._z()

        def rsample(self, sample_shape=torch.Size()):  # noqa: B008
            return self.loc + self.scale * self._z()

    g.D = types.SimpleNamespace(Normal=InjectedNormal)


class _RandProxy:
    """`torch` inside gaussian_rlpd / gaussian_ibrl: randperm and multinomial answer from the queue."""

    def __init__(self, torch_mod, ctx: Context) -> None:
        self._torch, self._ctx = torch_mod, ctx

    def __getattr__(self, name):
        return getattr(self._torch, name)

    def randperm(self, n, **kw):
        perm = self._ctx.queue.popleft()
        assert perm.shape == (n,), perm.shape
        return self._torch.from_numpy(np.array(perm, np.int64))

    def multinomial(self, weights, num_samples, **kw):
        u = self._ctx.queue.popleft()  # (B,): take proposal 0 (the pre-trained one) where u < its weight
        pick_bc = self._torch.from_numpy(np.array(u)).to(weights.dtype) < weights[:, 0]
        return (~pick_bc).long()[:, None]


def _gaussian_mlp(cfg: GaussianMLPConfig):
    from model.common.mlp_gaussian import Gaussian_MLP

    return Gaussian_MLP(cfg.action_dim, cfg.horizon_steps, cfg.cond_dim, mlp_dims=list(cfg.mlp_dims),
                        activation_type=cfg.activation_type, tanh_output=cfg.tanh_output, fixed_std=cfg.fixed_std,
                        std_min=cfg.std_min, std_max=cfg.std_max)


def _critic(cfg: CriticObsActConfig):
    from model.common.critic import CriticObsAct

    return CriticObsAct(cfg.cond_dim, list(cfg.mlp_dims), cfg.action_dim, cfg.action_steps,
                        activation_type=cfg.activation_type, use_layernorm=cfg.use_layernorm, double_q=cfg.double_q)


def _meta(actor: GaussianMLPConfig, critic: CriticObsActConfig, **kw: object) -> dict:
    return {"actor": {**dataclasses.asdict(actor), "mlp_dims": list(actor.mlp_dims)},
            "critic": {**dataclasses.asdict(critic), "mlp_dims": list(critic.mlp_dims)}, "gamma": GAMMA,
            "alpha": ALPHA, "randn_clip_value": CLIP, **kw}


def _load_ensemble(model, params: dict) -> None:
    """Members and upstream's stacked copies (ensemble_params) set to the canonical critic_networks.* weights."""
    import torch

    load_weights(model.critic_networks, {k[len("critic_networks."):]: v for k, v in params.items()
                                         if k.startswith("critic_networks.")})
    load_weights(model.target_networks, {k[len("target_networks."):]: v for k, v in params.items()
                                         if k.startswith("target_networks.")})
    with torch.no_grad():
        for name, stacked in model.ensemble_params.items():
            stacked.copy_(torch.stack([dict(m.named_parameters())[name] for m in model.critic_networks]))


def _batch(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {"obs": f32(rng.uniform(-1, 1, (B, TO, DO))), "next_obs": f32(rng.uniform(-1, 1, (B, TO, DO))),
           "actions": f32(rng.uniform(-1, 1, (B, TA, DA))), "rewards": f32(rng.normal(0.0, 0.5, B)),
           "terminated": f32(rng.random(B) < 0.3)}
    out["terminated"][:2] = [1.0, 0.0]
    return out


def _noise(rng: np.random.Generator, rows: int = B) -> np.ndarray:
    z = f32(rng.standard_normal((rows, CHUNK)) * 1.3)
    z[0, 0] = 2.6  # beyond CLIP: the clamp is exercised
    return z


def _t(x: np.ndarray):
    import torch

    return torch.from_numpy(x).to(torch.get_default_dtype())


def _grads(loss, named: list) -> dict[str, np.ndarray]:
    import torch

    grads = torch.autograd.grad(loss, [p for _, p in named])
    return {f"grad/{n}": to_np(g) for (n, _), g in zip(named, grads)}


def _actor_loss_case(ctx: Context, name: str, weights: str, model, obs: np.ndarray, noise: np.ndarray,
                     *args: float) -> None:
    """upstream's loss_actor(obs, *args) on the actor noise, with its gradient w.r.t. the trained actor."""

    def run(f64: bool) -> dict:
        m = model()
        loss = m.loss_actor({"state": _t(obs)}, *args)
        return {"loss": to_np(loss), **_grads(loss, [(f"network.{n}", p) for n, p in m.network.named_parameters()
                                                     if p.requires_grad])}

    up32, up64 = ctx.double_run(run, [noise])
    ctx.case(name, {"weights": weights}, {}, up32, up64)


def _ensemble_grads(loss, model) -> dict[str, np.ndarray]:
    """Gradients w.r.t. upstream's stacked ensemble copies, one entry per member (critic_networks.<i>.<name>)."""
    stacked = _grads(loss, list(model.ensemble_params.items()))
    return {f"grad/critic_networks.{i}.{k[len('grad/'):]}": g[i] for k, g in stacked.items() for i in range(len(g))}


def _sac(ctx: Context) -> None:
    from model.rl.gaussian_sac import SAC_Gaussian

    params = torch_default_init(gaussian_mlp_spec(SAC_ACTOR, "network."), 1300)
    params.update(torch_default_init(critic_obs_act_spec(DOUBLE_Q, "critic."), 1301))
    rng = ctx.rng("sac_target")
    params.update({"target_critic." + k[len("critic."):]: f32(v + 0.05 * rng.standard_normal(v.shape))
                   for k, v in list(params.items()) if k.startswith("critic.")})

    def model():
        m = SAC_Gaussian(actor=_gaussian_mlp(SAC_ACTOR), critic=_critic(DOUBLE_Q), horizon_steps=TA, device="cpu",
                         randn_clip_value=CLIP, tanh_output=True)
        load_weights(m, params)
        return m

    rng = ctx.rng("sac_batch")
    batch = _batch(rng)
    noise = {"next_noise": _noise(rng), "actor_noise": _noise(rng), "temperature_noise": _noise(rng)}
    ctx.case("sac_weights", _meta(SAC_ACTOR, DOUBLE_Q, tanh_output=True, target_entropy=-float(CHUNK)),
             {**batch, **noise, **{f"param/{k}": v for k, v in params.items()}}, {}, {})

    def critic_run(f64: bool) -> dict:
        m = model()
        t = {k: _t(v) for k, v in batch.items()}
        loss = m.loss_critic({"state": t["obs"]}, {"state": t["next_obs"]}, t["actions"], t["rewards"],
                             t["terminated"], GAMMA, ALPHA)
        return {"loss": to_np(loss), **_grads(loss, [(f"critic.{n}", p) for n, p in m.critic.named_parameters()])}

    up32, up64 = ctx.double_run(critic_run, [noise["next_noise"]])
    ctx.case("sac_critic_loss", {"weights": "sac_weights"}, {}, up32, up64)

    _actor_loss_case(ctx, "sac_actor_loss", "sac_weights", model, batch["obs"], noise["actor_noise"], ALPHA)

    def temperature_run(f64: bool) -> dict:
        import torch

        m = model()
        log_alpha = torch.tensor(np.log(ALPHA), dtype=torch.get_default_dtype(), requires_grad=True)
        loss = m.loss_temperature({"state": _t(batch["obs"])}, log_alpha.exp(), -float(CHUNK))
        (g,) = torch.autograd.grad(loss, [log_alpha])
        return {"loss": to_np(loss), "grad/log_alpha": to_np(g)}

    up32, up64 = ctx.double_run(temperature_run, [noise["temperature_noise"]])
    ctx.case("sac_temperature_loss", {"weights": "sac_weights", "log_alpha": float(np.log(ALPHA))}, {}, up32, up64)


def _ensemble_params(seed: int, target_rng: str, ctx: Context) -> dict[str, np.ndarray]:
    params = torch_default_init(critic_ensemble_spec(SINGLE_Q, N_CRITICS, "critic_networks."), seed)
    rng = ctx.rng(target_rng)
    params.update({"target_networks." + k[len("critic_networks."):]: f32(v + 0.05 * rng.standard_normal(v.shape))
                   for k, v in list(params.items())})
    return params


def _rlpd(ctx: Context) -> None:
    import model.rl.gaussian_rlpd as rlpd_mod
    import torch

    rlpd_mod.torch = _RandProxy(torch, ctx)
    params = torch_default_init(gaussian_mlp_spec(SAC_ACTOR, "network."), 1310)
    params.update(_ensemble_params(1311, "rlpd_target", ctx))

    def model(backup: bool):
        m = rlpd_mod.RLPD_Gaussian(actor=_gaussian_mlp(SAC_ACTOR), critic=_critic(SINGLE_Q), n_critics=N_CRITICS,
                                   backup_entropy=backup, horizon_steps=TA, device="cpu", randn_clip_value=CLIP,
                                   tanh_output=True)
        load_weights(m.network, {k[len("network."):]: v for k, v in params.items() if k.startswith("network.")})
        _load_ensemble(m, params)
        return m

    rng = ctx.rng("rlpd_batch")
    batch = _batch(rng)
    perm = rng.permutation(N_CRITICS).astype(np.int64)
    noise = {"next_noise": _noise(rng), "actor_noise": _noise(rng)}
    ctx.case("rlpd_weights", _meta(SAC_ACTOR, SINGLE_Q, tanh_output=True, n_critics=N_CRITICS),
             {**batch, **noise, "permutation": perm, **{f"param/{k}": v for k, v in params.items()}}, {}, {})
    for backup in (True, False):
        def critic_run(f64: bool, backup=backup) -> dict:
            m = model(backup)
            t = {k: _t(v) for k, v in batch.items()}
            loss = m.loss_critic({"state": t["obs"]}, {"state": t["next_obs"]}, t["actions"], t["rewards"],
                                 t["terminated"], GAMMA, ALPHA)
            return {"loss": to_np(loss), **_ensemble_grads(loss, m)}

        up32, up64 = ctx.double_run(critic_run, [perm, noise["next_noise"]])
        ctx.case(f"rlpd_critic_loss_backup{int(backup)}", {"weights": "rlpd_weights", "backup_entropy": backup}, {},
                 up32, up64)

    _actor_loss_case(ctx, "rlpd_actor_loss", "rlpd_weights", lambda: model(True),
                     batch["obs"], noise["actor_noise"], ALPHA)


def _ibrl(ctx: Context) -> None:
    import model.rl.gaussian_ibrl as ibrl_mod
    import torch

    ibrl_mod.torch = _RandProxy(torch, ctx)
    params = torch_default_init(gaussian_mlp_spec(IBRL_ACTOR, "network."), 1320)
    rng = ctx.rng("ibrl_policies")
    for prefix, scale in (("target_actor.", 0.05), ("bc_policy.", 0.3)):
        params.update({prefix + k[len("network."):]: f32(v + scale * rng.standard_normal(v.shape))
                       for k, v in list(params.items()) if k.startswith("network.")})
    params.update(_ensemble_params(1321, "ibrl_target", ctx))

    def model(soft: bool):
        m = ibrl_mod.IBRL_Gaussian(actor=_gaussian_mlp(IBRL_ACTOR), critic=_critic(SINGLE_Q), n_critics=N_CRITICS,
                                   soft_action_sample=soft, soft_action_sample_beta=0.7, horizon_steps=TA,
                                   device="cpu", randn_clip_value=CLIP)
        for prefix, module in (("network.", m.network), ("target_actor.", m.target_actor),
                               ("bc_policy.", m.bc_policy)):
            load_weights(module, {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)})
        _load_ensemble(m, params)
        return m

    rng = ctx.rng("ibrl_batch")
    batch = _batch(rng)
    batch["rewards"] = f32(batch["rewards"] * 4)  # both proposals win some rows
    perm = rng.permutation(N_CRITICS).astype(np.int64)
    noise = {"bc_noise": _noise(rng), "next_noise": _noise(rng), "actor_noise": _noise(rng),
             "act_bc_noise": _noise(rng), "act_rl_noise": _noise(rng)}
    uniform = rng.random(B)
    ctx.case("ibrl_weights", _meta(IBRL_ACTOR, SINGLE_Q, n_critics=N_CRITICS, soft_action_sample_beta=0.7),
             {**batch, **noise, "permutation": perm, "uniform": uniform,
              **{f"param/{k}": v for k, v in params.items()}}, {}, {})

    def critic_run(f64: bool) -> dict:
        m = model(False)
        t = {k: _t(v) for k, v in batch.items()}
        loss = m.loss_critic({"state": t["obs"]}, {"state": t["next_obs"]}, t["actions"], t["rewards"],
                             t["terminated"], GAMMA)
        return {"loss": to_np(loss), **_ensemble_grads(loss, m)}

    up32, up64 = ctx.double_run(critic_run, [perm, noise["bc_noise"], noise["next_noise"]])
    ctx.case("ibrl_critic_loss", {"weights": "ibrl_weights"}, {}, up32, up64)

    _actor_loss_case(ctx, "ibrl_actor_loss", "ibrl_weights", lambda: model(False), batch["obs"], noise["actor_noise"])

    for name, soft, det in (("ibrl_act_greedy", False, False), ("ibrl_act_soft", True, False),
                            ("ibrl_act_deterministic", True, True)):
        def act_run(f64: bool, soft=soft, det=det) -> dict:
            m = model(soft)
            with torch.no_grad():
                return {"actions": to_np(m({"state": _t(batch["obs"])}, deterministic=det))}

        queue = [perm, noise["act_bc_noise"], noise["act_rl_noise"], *([uniform] if soft and not det else [])]
        up32, up64 = ctx.double_run(act_run, queue)
        ctx.case(name, {"weights": "ibrl_weights", "soft": soft, "deterministic": det}, {}, up32, up64)


def _calql(ctx: Context) -> None:
    from model.rl.gaussian_calql import CalQL_Gaussian

    params = torch_default_init(gaussian_mlp_spec(SAC_ACTOR, "network."), 1330)
    params.update(torch_default_init(critic_obs_act_spec(DOUBLE_Q, "critic."), 1331))
    rng = ctx.rng("calql_target")
    params.update({"target_critic." + k[len("critic."):]: f32(v + 0.05 * rng.standard_normal(v.shape))
                   for k, v in list(params.items()) if k.startswith("critic.")})
    clip = (-1.5, 4.0)

    def model():
        m = CalQL_Gaussian(actor=_gaussian_mlp(SAC_ACTOR), critic=_critic(DOUBLE_Q), horizon_steps=TA, device="cpu",
                           randn_clip_value=CLIP, tanh_output=True, cql_n_actions=CQL_N, cql_min_q_weight=5.0,
                           cql_clip_diff_min=clip[0], cql_clip_diff_max=clip[1])
        load_weights(m, params)
        return m

    rng = ctx.rng("calql_batch")
    batch = _batch(rng)
    batch["returns"] = f32(rng.normal(0.0, 2.0, B))
    noise = {"next_noise": _noise(rng, B * CQL_N), "pi_noise": _noise(rng), "actor_noise": _noise(rng)}
    random_actions = f32(rng.uniform(-1, 1, (B, N_RAND, TA, DA)))
    ctx.case("calql_weights", _meta(SAC_ACTOR, DOUBLE_Q, tanh_output=True, cql_n_actions=CQL_N, cql_min_q_weight=5.0,
                                    cql_clip_diff_min=clip[0], cql_clip_diff_max=clip[1]),
             {**batch, **noise, "random_actions": random_actions, **{f"param/{k}": v for k, v in params.items()}},
             {}, {})

    def critic_run(f64: bool) -> dict:
        m = model()
        t = {k: _t(v) for k, v in batch.items()}
        loss = m.loss_critic({"state": t["obs"]}, {"state": t["next_obs"]}, t["actions"], _t(random_actions),
                             t["rewards"], t["returns"], t["terminated"], GAMMA, ALPHA)
        return {"loss": to_np(loss), **_grads(loss, [(f"critic.{n}", p) for n, p in m.critic.named_parameters()])}

    up32, up64 = ctx.double_run(critic_run, [noise["next_noise"], noise["pi_noise"]])
    ctx.case("calql_critic_loss", {"weights": "calql_weights"}, {}, up32, up64)

    _actor_loss_case(ctx, "calql_actor_loss", "calql_weights", model, batch["obs"], noise["actor_noise"], ALPHA)


def build(ctx: Context) -> None:
    _inject(ctx)
    _sac(ctx)
    _rlpd(ctx)
    _ibrl(ctx)
    _calql(ctx)
