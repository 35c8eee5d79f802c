"""Section `idql`: upstream IDQLDiffusion on one fixed batch.

- `losses`: loss_critic_v (expectile 0.8 of min(target Q1, Q2) - V) with its gradient w.r.t. critic_v,
  loss_critic_q (both heads towards r + gamma * (1 - terminated) * V(s')) with its gradient w.r.t. critic_q,
  the plain denoising loss (timesteps and noise injected) with its gradient w.r.t. the network, and the
  target Q after update_target_critic(tau). The target copy holds weights of its own (the trained critic's
  plus a perturbation), so a loss that read the wrong Q would show.
- `act_argmax`: forward(deterministic=True): S candidate chains per observation (noise injected),
  scored by the target Q, the argmax kept.
- `act_expectile`: forward(deterministic=False, use_expectile_exploration=True). torch.multinomial is
  replaced by a recorder that keeps upstream's normalised weights and draws each row's index by inverse
  CDF at u = Phi(z), z a stored normal: the categorical draw our driver makes from its noise.
"""

from __future__ import annotations

import math

import numpy as np

from scripts.golden import upstream_models as um
from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec import (
    CriticObsActConfig,
    CriticObsConfig,
    critic_obs_act_spec,
    critic_obs_spec,
    diffusion_mlp_spec,
    torch_default_init,
)

K_STEPS, S, GAMMA, TAU, HYPER = 5, 3, 0.99, 0.1, 0.7
CRITIC_Q = CriticObsActConfig(um.TO * um.DO, mlp_dims=(16, 16), action_dim=um.DA, action_steps=um.TA)
CRITIC_V = CriticObsConfig(um.TO * um.DO, mlp_dims=(16, 16, 16), residual_style=True)


def _params(ctx: Context) -> dict[str, np.ndarray]:
    params = {f"network.{k}": v for k, v in torch_default_init(diffusion_mlp_spec(um.NET), 960).items()}
    q = torch_default_init(critic_obs_act_spec(CRITIC_Q), 961)
    rng = ctx.rng("idql_target")
    params.update({f"critic_q.{k}": v for k, v in q.items()})
    params.update({f"critic_q_target.{k}": f32(v + 0.05 * rng.standard_normal(v.shape)) for k, v in q.items()})
    params.update({f"critic_v.{k}": v for k, v in torch_default_init(critic_obs_spec(CRITIC_V), 962).items()})
    return params


def _model(params: dict[str, np.ndarray]):
    from model.common.critic import CriticObs, CriticObsAct
    from model.diffusion.diffusion_idql import IDQLDiffusion

    q = CRITIC_Q
    critic_q = CriticObsAct(q.cond_dim, list(q.mlp_dims), q.action_dim, q.action_steps,
                            activation_type=q.activation_type)
    v = CRITIC_V
    critic_v = CriticObs(v.cond_dim, list(v.mlp_dims), activation_type=v.activation_type,
                         residual_style=v.residual_style)
    model = IDQLDiffusion(actor=um._network(), critic_q=critic_q, critic_v=critic_v, min_sampling_denoising_std=0.1,
                          **um._model_kwargs(um.diffusion_config(denoising_steps=K_STEPS)))
    for module, prefix in ((model.network, "network."), (model.critic_q, "critic_q."),
                           (model.target_q, "critic_q_target."), (model.critic_v, "critic_v.")):
        load_weights(module, {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)})
    return model


def _meta(kind: str) -> dict:
    dc = um.diffusion_config(denoising_steps=K_STEPS)
    return {"kind": kind, "diffusion": um.config_meta(dc), "critic_q": dict(CRITIC_Q.__dict__),
            "critic_v": dict(CRITIC_V.__dict__), "gamma": GAMMA, "tau": TAU, "expectile": 0.8, "num_sample": S,
            "critic_hyperparam": HYPER, "min_sampling_denoising_std": 0.1}


def _losses(ctx: Context, params: dict[str, np.ndarray]) -> None:
    import torch

    rng = ctx.rng("idql_losses")
    B = um.B
    inputs = {"obs": f32(rng.uniform(-1, 1, (B, um.TO, um.DO))), "next_obs": f32(rng.uniform(-1, 1, (B, um.TO, um.DO))),
              "actions": f32(rng.uniform(-1, 1, (B, um.TA, um.DA))), "rewards": f32(rng.normal(0.0, 0.05, B)),
              "terminated": np.array([0, 1, 0, 0, 1, 0], np.float32),
              "t": rng.integers(0, K_STEPS, B).astype(np.int64), "noise": f32(rng.standard_normal((B, um.TA, um.DA)))}

    def run(f64: bool) -> dict:
        model = _model(params)
        dt = torch.get_default_dtype()
        x = {k: torch.from_numpy(inputs[k]).to(dt) for k in ("obs", "next_obs", "actions", "rewards", "terminated")}
        out = {}
        for name, loss, module in (
                ("critic_v", model.loss_critic_v({"state": x["obs"]}, x["actions"]), model.critic_v),
                ("critic_q", model.loss_critic_q({"state": x["obs"]}, {"state": x["next_obs"]}, x["actions"],
                                                 x["rewards"], x["terminated"], GAMMA), model.critic_q),
                ("network", model.loss(x["actions"], {"state": x["obs"]}), model.network)):
            named = list(module.named_parameters())
            grads = torch.autograd.grad(loss, [p for _, p in named])
            out[f"loss/{name}"] = to_np(loss)
            out.update({f"grad/{name}.{n}": to_np(g) for (n, _), g in zip(named, grads)})
        model.update_target_critic(TAU)
        out.update({f"target/critic_q_target.{n}": to_np(p) for n, p in model.target_q.named_parameters()})
        return out

    up32, up64 = ctx.double_run(run, [inputs["t"], inputs["noise"]])
    ctx.case("losses", _meta("losses"), {**inputs, **{f"param/{k}": v for k, v in params.items()}}, up32, up64)


def _centred_v(ctx: Context, params: dict[str, np.ndarray], obs: np.ndarray, chain: np.ndarray) -> dict:
    """params with V(s) made nearly constant at the median of the candidates' target Q, so that Q - V
    has both signs among an observation's candidates and the draw's weights are not all equal."""
    import torch
    from model.diffusion.diffusion_rwr import RWRDiffusion

    with ctx.precision(True, list(chain)):
        model = _model(params)
        state = torch.from_numpy(np.tile(obs, (S, 1, 1))).double()
        samples = RWRDiffusion.forward(model, {"state": state}, deterministic=False)
        q = torch.minimum(*model.target_q({"state": state}, samples)).detach().numpy()
    out = dict(params)
    out["critic_v.Q1.layers.2.weight"] = f32(0.01 * params["critic_v.Q1.layers.2.weight"])
    out["critic_v.Q1.layers.2.bias"] = f32(np.full(1, np.median(q)))
    return out


def _act(ctx: Context, params: dict[str, np.ndarray], name: str, deterministic: bool) -> None:
    import torch

    rng = ctx.rng(f"idql_{name}")
    B = um.B
    obs = f32(rng.uniform(-1, 1, (B, um.TO, um.DO)))
    chain = f32(rng.standard_normal((K_STEPS + 1, S * B, um.TA, um.DA)))  # x_T, then one z per step
    z = f32(rng.standard_normal(B))  # the choice's normals
    if not deterministic:
        params = _centred_v(ctx, params, obs, chain)
    seen = {}

    def multinomial(weights, num_samples):  # weights (B, S): upstream's normalised tau_weights, transposed
        assert num_samples == 1
        w = weights.detach().double().numpy()
        u = np.array([0.5 * (1.0 + math.erf(float(v) / math.sqrt(2.0))) for v in z])
        index = np.minimum((np.cumsum(w, axis=1) <= u[:, None]).sum(axis=1), w.shape[1] - 1)
        seen["weights"], seen["index"] = w.T.copy(), index
        return torch.from_numpy(index[:, None].astype(np.int64))

    def run(f64: bool) -> dict:
        model = _model(params)
        ctx.inject("model.diffusion.diffusion_idql")
        import model.diffusion.diffusion_idql as idql_mod

        idql_mod.torch.multinomial = multinomial
        dt = torch.get_default_dtype()
        samples = model({"state": torch.from_numpy(obs).to(dt)}, deterministic=deterministic, num_sample=S,
                        critic_hyperparam=HYPER, use_expectile_exploration=True)
        out = {"actions": to_np(samples)}
        if not deterministic:
            out.update(tau_weights=seen["weights"], index=seen["index"].astype(np.int64))
        return out

    up32, up64 = ctx.double_run(run, list(chain))
    ctx.case(name, _meta(name), {"obs": obs, "chain_noise": chain, "choice_normals": z,
                                 **{f"param/{k}": v for k, v in params.items()}}, up32, up64)


def build(ctx: Context) -> None:
    ctx.inject("model.diffusion.diffusion", "model.diffusion.diffusion_rwr", "model.diffusion.diffusion_idql")
    params = _params(ctx)
    _losses(ctx, params)
    _act(ctx, params, "act_argmax", deterministic=True)
    _act(ctx, params, "act_expectile", deterministic=False)
