"""Section `awr`: upstream TrainAWRDiffusionAgent's TD(lambda) targets (its module function td_values, run
on a buffer with terminations and a terminated last step) and AWRDiffusion.loss_critic with its gradient
w.r.t. the critic (the state value V (B, 1) against targets (B,), as upstream calls it).

The agent module imports upstream's env package (gym and MuJoCo); it is stubbed like wandb and hydra,
since td_values uses none of them.
"""

from __future__ import annotations

import sys
import types

import numpy as np

from scripts.golden import upstream_models as um
from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec import critic_obs_spec, torch_default_init

S, N = 9, 3


def _td_values() -> object:
    for name in ("env", "env.gym_utils"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["env.gym_utils"].make_async = None
    from agent.finetune.train_awr_diffusion_agent import td_values

    return td_values


def build(ctx: Context) -> None:
    import torch

    td_values = _td_values()
    for name, last_terminated in (("td_last_alive", False), ("td_last_terminated", True)):
        rng = ctx.rng(name)
        rewards = rng.normal(0.02, 0.01, (S, N))  # float64 and scaled, as the buffer holds them
        terminated = rng.random((S, N)) < 0.15
        terminated[-1, 0] = last_terminated
        values = f32(rng.normal(0.5, 0.2, (S, N)))
        obs = np.zeros((S, N, 1, 1), np.float32)  # td_values only takes its length
        out = {"targets": td_values(obs, rewards, terminated, values)}
        ctx.case(name, {"kind": "td_values", "gamma": 0.99, "alpha": 0.95, "lambda": 0.95},
                 {"rewards": rewards, "terminated": terminated, "values": values}, out, out)

    ctx.inject("model.diffusion.diffusion", "model.diffusion.diffusion_rwr")
    from model.common.critic import CriticObs
    from model.diffusion.diffusion_awr import AWRDiffusion

    params = torch_default_init(critic_obs_spec(um.CRITIC), 950)
    rng = ctx.rng("critic_loss")
    state = f32(rng.uniform(-1, 1, (um.B, um.TO, um.DO)))
    targets = f32(rng.normal(0.0, 1.0, um.B))

    def run(f64: bool) -> dict:
        critic = CriticObs(um.CRITIC.cond_dim, list(um.CRITIC.mlp_dims), activation_type=um.CRITIC.activation_type)
        dc = um.diffusion_config(denoising_steps=5)
        model = AWRDiffusion(actor=um._network(), critic=critic, min_sampling_denoising_std=0.1,
                             **um._model_kwargs(dc))
        load_weights(model.critic, params)
        dt = torch.get_default_dtype()
        loss = model.loss_critic({"state": torch.from_numpy(state).to(dt)}, torch.from_numpy(targets).to(dt))
        named = list(model.critic.named_parameters())
        grads = torch.autograd.grad(loss, [p for _, p in named])
        return {"loss": to_np(loss), **{f"grad/critic.{n}": to_np(g) for (n, _), g in zip(named, grads)}}

    up32, up64 = ctx.double_run(run)
    ctx.case("critic_loss", {"kind": "critic_loss", "critic": dict(um.CRITIC.__dict__),
                             "note": "upstream's V (B, 1) minus targets (B,) broadcasts to all B x B pairs"},
             {"state": state, "targets": targets, **{f"param/critic.{k}": v for k, v in params.items()}}, up32, up64)
