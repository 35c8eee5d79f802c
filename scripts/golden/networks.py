"""Section `networks`: DiffusionMLP (plain and residual, with and without cond_mlp), CriticObs and
Gaussian_MLP (learned std, fixed std, learned fixed std) outputs on shared seeded weights."""

from __future__ import annotations

import dataclasses

import numpy as np

from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec import (
    CriticObsConfig,
    DiffusionMLPConfig,
    GaussianMLPConfig,
    critic_obs_spec,
    diffusion_mlp_spec,
    gaussian_mlp_spec,
    torch_default_init,
)

B, TA, DA, TO, DO = 5, 4, 3, 2, 5  # batch, horizon, action dim, obs history, obs dim

DIFFUSION_MLPS = {
    "dmlp_plain": DiffusionMLPConfig(DA, TA, TO * DO, time_dim=8, mlp_dims=(16, 16)),
    "dmlp_residual": DiffusionMLPConfig(DA, TA, TO * DO, time_dim=8, mlp_dims=(16, 16, 16), residual_style=True),
    "dmlp_cond_mlp": DiffusionMLPConfig(DA, TA, TO * DO, time_dim=8, mlp_dims=(16, 16), cond_mlp_dims=(12, 6)),
    "dmlp_residual_ln_cond": DiffusionMLPConfig(DA, TA, TO * DO, time_dim=8, mlp_dims=(16, 16, 16),
                                                cond_mlp_dims=(6,), residual_style=True, use_layernorm=True,
                                                activation_type="ReLU"),
}
CRITICS = {
    "critic_plain": CriticObsConfig(TO * DO, mlp_dims=(16, 16)),
    "critic_residual": CriticObsConfig(TO * DO, mlp_dims=(16, 16, 16), residual_style=True, use_layernorm=True),
}
GAUSSIANS = {
    "gauss_learned_std": GaussianMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16), std_min=0.05, std_max=0.8),
    "gauss_fixed_std": GaussianMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16), fixed_std=0.2),
    "gauss_learn_fixed_std": GaussianMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16), fixed_std=0.3,
                                               learn_fixed_std=True),
}


def config_meta(kind: str, cfg: object) -> dict:
    return {"kind": kind, "config": dataclasses.asdict(cfg)}


def _inputs(ctx: Context, name: str) -> dict[str, np.ndarray]:
    rng = ctx.rng(name)
    return {"x": f32(rng.standard_normal((B, TA, DA))), "t": rng.integers(0, 20, B).astype(np.int64),
            "state": f32(rng.uniform(-1, 1, (B, TO, DO)))}


def build(ctx: Context) -> None:
    import torch
    from model.common.critic import CriticObs
    from model.common.mlp_gaussian import Gaussian_MLP
    from model.diffusion.mlp_diffusion import DiffusionMLP

    for i, (name, cfg) in enumerate(DIFFUSION_MLPS.items()):
        params = torch_default_init(diffusion_mlp_spec(cfg), 100 + i)
        inp = _inputs(ctx, name)

        def run(f64: bool, cfg=cfg, params=params, inp=inp) -> dict:
            net = DiffusionMLP(cfg.action_dim, cfg.horizon_steps, cfg.cond_dim, time_dim=cfg.time_dim,
                               mlp_dims=list(cfg.mlp_dims),
                               cond_mlp_dims=None if cfg.cond_mlp_dims is None else list(cfg.cond_mlp_dims),
                               activation_type=cfg.activation_type, use_layernorm=cfg.use_layernorm,
                               residual_style=cfg.residual_style)
            load_weights(net, params)
            dt = torch.get_default_dtype()
            out = net(torch.from_numpy(inp["x"]).to(dt), torch.from_numpy(inp["t"]),
                      cond={"state": torch.from_numpy(inp["state"]).to(dt)})
            return {"out": to_np(out)}

        up32, up64 = ctx.double_run(run)
        ctx.case(name, config_meta("diffusion_mlp", cfg), {**inp, **{f"param/{k}": v for k, v in params.items()}},
                 up32, up64)

    for i, (name, cfg) in enumerate(CRITICS.items()):
        params = torch_default_init(critic_obs_spec(cfg), 200 + i)
        inp = _inputs(ctx, name)

        def run(f64: bool, cfg=cfg, params=params, inp=inp) -> dict:
            net = CriticObs(cfg.cond_dim, list(cfg.mlp_dims), activation_type=cfg.activation_type,
                            use_layernorm=cfg.use_layernorm, residual_style=cfg.residual_style)
            load_weights(net, params)
            return {"out": to_np(net({"state": torch.from_numpy(inp["state"]).to(torch.get_default_dtype())}))}

        up32, up64 = ctx.double_run(run)
        ctx.case(name, config_meta("critic_obs", cfg), {"state": inp["state"],
                                                        **{f"param/{k}": v for k, v in params.items()}}, up32, up64)

    for i, (name, cfg) in enumerate(GAUSSIANS.items()):
        overrides = {"logvar": float(np.log(cfg.fixed_std**2))} if cfg.learn_fixed_std else None
        params = torch_default_init(gaussian_mlp_spec(cfg), 300 + i, overrides)
        if cfg.learn_fixed_std:  # move the learned log-variance off its start so clamping and repeat show
            params["logvar"] = f32(ctx.rng(name + "logvar").uniform(-4, -1, cfg.action_dim))
        inp = _inputs(ctx, name)

        def run(f64: bool, cfg=cfg, params=params, inp=inp) -> dict:
            net = Gaussian_MLP(cfg.action_dim, cfg.horizon_steps, cfg.cond_dim, mlp_dims=list(cfg.mlp_dims),
                               activation_type=cfg.activation_type, tanh_output=cfg.tanh_output,
                               residual_style=cfg.residual_style, use_layernorm=cfg.use_layernorm,
                               fixed_std=cfg.fixed_std, learn_fixed_std=cfg.learn_fixed_std, std_min=cfg.std_min,
                               std_max=cfg.std_max)
            load_weights(net, params)
            mean, std = net({"state": torch.from_numpy(inp["state"]).to(torch.get_default_dtype())})
            return {"mean": to_np(mean), "std": to_np(std)}

        up32, up64 = ctx.double_run(run)
        ctx.case(name, config_meta("gaussian_mlp", cfg), {"state": inp["state"],
                                                          **{f"param/{k}": v for k, v in params.items()}}, up32, up64)
