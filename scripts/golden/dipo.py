"""Section `dipo`: upstream DIPODiffusion's sampler (its forward runs the TARGET actor: rollouts and the
TD target's next actions) and its loss_critic with the gradient w.r.t. the critic: double-Q TD error
against r + gamma * (1 - terminated) * min of the target critic at the target actor's next actions.
The actor, target actor, critic and target critic hold different weights, so a twin that samples with
the wrong actor or bootstraps from the wrong critic is caught. Chain noise is injected."""

from __future__ import annotations

import numpy as np

from scripts.golden import upstream_models as um
from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec import CriticObsActConfig, critic_obs_act_spec, diffusion_mlp_spec, torch_default_init

CRITIC = CriticObsActConfig(um.TO * um.DO, mlp_dims=(16, 16), action_dim=um.DA, action_steps=um.TA)
SAMPLER = dict(denoising_steps=6, randn_clip_value=3.0, final_action_clip_value=1.0)
MIN_STD, GAMMA = 0.1, 0.99


def _perturbed(ctx: Context, params: dict[str, np.ndarray], tag: str) -> dict[str, np.ndarray]:
    rng = ctx.rng(tag)
    return {k: f32(v + 0.05 * rng.standard_normal(v.shape)) for k, v in params.items()}


def _params(ctx: Context) -> dict[str, np.ndarray]:
    actor = torch_default_init(diffusion_mlp_spec(um.NET), 960)
    critic = torch_default_init(critic_obs_act_spec(CRITIC), 961)
    out = {f"network.{k}": v for k, v in actor.items()}
    out.update({f"actor_target.{k}": v for k, v in _perturbed(ctx, actor, "dipo_actor_target").items()})
    out.update({f"critic.{k}": v for k, v in critic.items()})
    out.update({f"critic_target.{k}": v for k, v in _perturbed(ctx, critic, "dipo_critic_target").items()})
    return out


def _model(ctx: Context, params: dict[str, np.ndarray]):
    ctx.inject("model.diffusion.diffusion", "model.diffusion.diffusion_dipo")
    from model.common.critic import CriticObsAct
    from model.diffusion.diffusion_dipo import DIPODiffusion

    dc = um.diffusion_config(**SAMPLER)
    critic = CriticObsAct(CRITIC.cond_dim, list(CRITIC.mlp_dims), CRITIC.action_dim, CRITIC.action_steps,
                          activation_type=CRITIC.activation_type)
    model = DIPODiffusion(actor=um._network(), critic=critic, min_sampling_denoising_std=MIN_STD,
                          **um._model_kwargs(dc))
    # upstream registers the actor twice (network and actor are one module); load each canonical prefix
    load_weights(model, params, {"actor.": "network."})
    return model


def build(ctx: Context) -> None:
    import torch

    dc = um.diffusion_config(**SAMPLER)
    params = _params(ctx)
    rng = ctx.rng("dipo")
    B, S = um.B, dc.denoising_steps
    state = f32(rng.uniform(-1, 1, (B, um.TO, um.DO)))
    next_state = f32(rng.uniform(-1, 1, (B, um.TO, um.DO)))
    actions = f32(rng.uniform(-1, 1, (B, um.TA, um.DA)))
    rewards = f32(rng.normal(0.02, 0.01, B))
    terminated = f32(rng.random(B) < 0.4)
    terminated[:2] = (0.0, 1.0)
    noise = f32(rng.standard_normal((S + 1, B, um.TA, um.DA)))
    meta = {"diffusion": um.config_meta(dc), "critic": dict(CRITIC.__dict__), "min_sampling_denoising_std": MIN_STD}
    inputs = {"state": state, "noise": noise, **{f"param/{k}": v for k, v in params.items()}}

    def sample(f64: bool) -> dict:
        model = _model(ctx, params)
        return {"actions": to_np(model({"state": torch.from_numpy(state).to(torch.get_default_dtype())},
                                       deterministic=False))}

    up32, up64 = ctx.double_run(sample, list(noise))
    ctx.case("sample_target_actor", {"kind": "sample", **meta}, inputs, up32, up64)

    def critic_loss(f64: bool) -> dict:
        model = _model(ctx, params)
        dt = torch.get_default_dtype()
        t = {k: torch.from_numpy(v).to(dt) for k, v in (("obs", state), ("next_obs", next_state),
                                                         ("actions", actions), ("rewards", rewards),
                                                         ("terminated", terminated))}
        loss = model.loss_critic({"state": t["obs"]}, {"state": t["next_obs"]}, t["actions"], t["rewards"],
                                 t["terminated"], GAMMA)
        named = list(model.critic.named_parameters())
        grads = torch.autograd.grad(loss, [p for _, p in named])
        return {"loss": to_np(loss), **{f"grad/critic.{n}": to_np(g) for (n, _), g in zip(named, grads)}}

    up32, up64 = ctx.double_run(critic_loss, list(noise))
    ctx.case("critic_loss", {"kind": "critic_loss", "gamma": GAMMA, **meta},
             {**inputs, "next_state": next_state, "actions": actions, "rewards": rewards, "terminated": terminated},
             up32, up64)
