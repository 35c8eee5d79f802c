"""Section `dql`: upstream DQLDiffusion.loss_critic (next chunks sampled by its no-gradient forward with the
exploration floor, targets from the target critic's min(Q1', Q2'), terminal mask) with its gradient w.r.t.
the critic, and DQLDiffusion.loss_actor (the chunk from forward_train, the denoising loss on it, the
coin-flipped Q head normalised by the other) with its gradient w.r.t. the policy, once per head; the Q2
case sets final_action_clip_value = 2.0, which upstream's training chain reads as "clamp to [-1, 1]".

Every draw is injected: the chains' x_T and per-step noise, the loss's timesteps and training noise, and
the coin (upstream's np.random.uniform in diffusion_dql, replaced by a fixed value). The weights (policy,
critic, target critic) are stored once, with the critic_loss case.
"""

from __future__ import annotations

import types

import numpy as np

from scripts.golden import upstream_models as um
from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec import CriticObsActConfig, critic_obs_act_spec, diffusion_mlp_spec, torch_default_init

S = 4  # denoising steps
MIN_STD, GAMMA, ETA = 0.1, 0.99, 0.7
CRITIC = CriticObsActConfig(um.TO * um.DO, mlp_dims=(16, 16), action_dim=um.DA, action_steps=um.TA)


def _model(dc, critic_params: dict, target_params: dict, policy: dict) -> object:
    from model.common.critic import CriticObsAct
    from model.diffusion.diffusion_dql import DQLDiffusion

    critic = CriticObsAct(CRITIC.cond_dim, list(CRITIC.mlp_dims), CRITIC.action_dim, CRITIC.action_steps,
                          activation_type=CRITIC.activation_type)
    model = DQLDiffusion(actor=um._network(), critic=critic, min_sampling_denoising_std=MIN_STD,
                         **um._model_kwargs(dc))
    load_weights(model.network, policy)
    load_weights(model.critic, critic_params)
    load_weights(model.critic_target, target_params)
    return model


def build(ctx: Context) -> None:
    import torch

    ctx.inject("model.diffusion.diffusion", "model.diffusion.diffusion_dql")
    import model.diffusion.diffusion_dql as dql_mod

    policy = torch_default_init(diffusion_mlp_spec(um.NET), 960)
    critic = torch_default_init(critic_obs_act_spec(CRITIC), 961)
    rng = ctx.rng("dql_target")
    target = {k: f32(v + 0.05 * rng.standard_normal(v.shape)) for k, v in critic.items()}
    params = {**{f"network.{k}": v for k, v in policy.items()}, **{f"critic.{k}": v for k, v in critic.items()},
              **{f"critic_target.{k}": v for k, v in target.items()}}

    rng = ctx.rng("dql_critic_loss")
    B, chain = um.B, (S + 1, um.B, um.TA, um.DA)
    inputs = {"obs": f32(rng.uniform(-1, 1, (B, um.TO, um.DO))), "next_obs": f32(rng.uniform(-1, 1, (B, um.TO, um.DO))),
              "actions": f32(rng.uniform(-1, 1, (B, um.TA, um.DA))), "rewards": f32(rng.normal(0.0, 0.05, B)),
              "terminated": f32(rng.random(B) < 0.3), "next_noise": f32(rng.standard_normal(chain))}
    inputs["terminated"][:2] = [1.0, 0.0]
    dc = um.diffusion_config(denoising_steps=S)

    def critic_run(f64: bool) -> dict:
        model = _model(dc, critic, target, policy)
        dt = torch.get_default_dtype()
        t = {k: torch.from_numpy(v).to(dt) for k, v in inputs.items() if k != "next_noise"}
        loss = model.loss_critic({"state": t["obs"]}, {"state": t["next_obs"]}, t["actions"], t["rewards"],
                                 t["terminated"], GAMMA)
        named = list(model.critic.named_parameters())
        grads = torch.autograd.grad(loss, [p for _, p in named])
        return {"loss": to_np(loss), **{f"grad/critic.{n}": to_np(g) for (n, _), g in zip(named, grads)}}

    up32, up64 = ctx.double_run(critic_run, list(inputs["next_noise"]))
    meta = {"kind": "critic_loss", "critic": {**CRITIC.__dict__, "mlp_dims": list(CRITIC.mlp_dims)},
            "diffusion": um.config_meta(dc), "min_sampling_denoising_std": MIN_STD, "gamma": GAMMA}
    ctx.case("critic_loss", meta, {**inputs, **{f"param/{k}": v for k, v in params.items()}}, up32, up64)

    for name, coin, clip in (("actor_loss_q1", 0.7, None), ("actor_loss_q2_clamped", 0.2, 2.0)):
        rng = ctx.rng(name)
        dc = um.diffusion_config(denoising_steps=S, final_action_clip_value=clip)
        obs = f32(rng.uniform(-1, 1, (B, um.TO, um.DO)))
        chain_noise = f32(rng.standard_normal(chain))
        t = rng.integers(0, S, B).astype(np.int64)
        noise = f32(rng.standard_normal((B, um.TA, um.DA)))

        def actor_run(f64: bool, dc=dc, obs=obs, coin=coin) -> dict:
            model = _model(dc, critic, target, policy)
            dql_mod.np = types.SimpleNamespace(random=types.SimpleNamespace(uniform=lambda: coin))
            try:
                state = torch.from_numpy(obs).to(torch.get_default_dtype())
                loss = model.loss_actor({"state": state}, ETA, um.TA)
            finally:
                dql_mod.np = np
            named = list(model.network.named_parameters())
            grads = torch.autograd.grad(loss, [p for _, p in named])
            return {"loss": to_np(loss), **{f"grad/network.{n}": to_np(g) for (n, _), g in zip(named, grads)}}

        up32, up64 = ctx.double_run(actor_run, [*chain_noise, t, noise])
        meta = {"kind": "actor_loss", "critic": {**CRITIC.__dict__, "mlp_dims": list(CRITIC.mlp_dims)},
                "diffusion": um.config_meta(dc), "min_sampling_denoising_std": MIN_STD, "eta": ETA, "coin": coin}
        ctx.case(name, meta, {"obs": obs, "chain_noise": chain_noise, "t": t, "noise": noise}, up32, up64)
