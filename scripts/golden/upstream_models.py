"""Upstream DiffusionModel / PPODiffusion built from our configs, with canonical weights loaded.

Every section that needs an upstream diffusion policy builds it here, so the mapping from our
option names to upstream's constructor arguments is written once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from dppo.interop import upstream_code
from scripts.golden.common import Context, f32, load_weights
from shared.param_spec import (
    CriticObsConfig,
    DiffusionMLPConfig,
    critic_obs_spec,
    diffusion_mlp_spec,
    torch_default_init,
)
from shared.settings import DiffusionConfig

B, TA, DA, TO, DO = 6, 4, 2, 1, 3  # batch, horizon, action dim, obs history, obs dim
NET = DiffusionMLPConfig(DA, TA, TO * DO, time_dim=8, mlp_dims=(16, 16))
CRITIC = CriticObsConfig(TO * DO, mlp_dims=(16, 16))


def diffusion_config(**kw: Any) -> DiffusionConfig:
    return DiffusionConfig(network=NET, horizon_steps=TA, obs_dim=DO, action_dim=DA, cond_steps=TO, **kw)


def config_meta(dc: DiffusionConfig) -> dict:
    return dataclasses.asdict(dc)


def policy_params(ctx: Context, seed: int, with_critic: bool = True) -> dict[str, np.ndarray]:
    """actor.*, actor_ft.* (the base plus a seeded perturbation, so the two differ) and critic.*."""
    base = torch_default_init(diffusion_mlp_spec(NET), seed)
    rng = ctx.rng(f"actor_ft{seed}")
    params = {f"actor.{k}": v for k, v in base.items()}
    params.update({f"actor_ft.{k}": f32(v + 0.05 * rng.standard_normal(v.shape)) for k, v in base.items()})
    if with_critic:
        params.update({f"critic.{k}": v for k, v in torch_default_init(critic_obs_spec(CRITIC), seed + 1).items()})
    return params


def _network() -> Any:
    return upstream_code.diffusion_mlp(NET)


def _model_kwargs(dc: DiffusionConfig) -> dict:
    return upstream_code.model_kwargs(dc)


def diffusion_model(ctx: Context, dc: DiffusionConfig, params: dict[str, np.ndarray]) -> Any:
    """Upstream DiffusionModel (pre-training / evaluation class) with network.* = params (no prefix)."""
    ctx.inject("model.diffusion.diffusion")
    return upstream_code.diffusion_model(dc, params)


def eta_module(eta: dict | None) -> Any:
    """eta = {"kind": "EtaFixed" | "EtaAction", "base_eta", "min_eta", "max_eta"} or None (DDPM)."""
    if eta is None:
        return None
    from model.diffusion import eta as eta_mod

    kw = {k: v for k, v in eta.items() if k != "kind"}
    if eta["kind"] == "EtaAction":
        return eta_mod.EtaAction(action_dim=DA, **kw)
    return getattr(eta_mod, eta["kind"])(**kw)


def ppo_diffusion(ctx: Context, dc: DiffusionConfig, dppo: dict, params: dict[str, np.ndarray],
                  eta: dict | None = None, learn_eta: bool = False, **ppo_kw: Any) -> Any:
    """Upstream PPODiffusion; dppo holds ft_denoising_steps and the min stds; eta.* params (if any) load too."""
    ctx.inject("model.diffusion.diffusion", "model.diffusion.diffusion_vpg")
    ppo = dict(gamma_denoising=0.99, clip_ploss_coef=0.01)
    ppo.update(ppo_kw)
    return upstream_code.ppo_diffusion(dc, CRITIC, dppo, params, eta=eta_module(eta), learn_eta=learn_eta, **ppo)


def rwr_diffusion(ctx: Context, dc: DiffusionConfig, min_sampling_denoising_std: float,
                  params: dict[str, np.ndarray]) -> Any:
    """Upstream RWRDiffusion (reward-weighted loss, exploration std floor) with network.* = params (no prefix)."""
    ctx.inject("model.diffusion.diffusion", "model.diffusion.diffusion_rwr")
    from model.diffusion.diffusion_rwr import RWRDiffusion

    model = RWRDiffusion(network=_network(), min_sampling_denoising_std=min_sampling_denoising_std,
                         **_model_kwargs(dc))
    load_weights(model, {f"network.{k}": v for k, v in params.items()})
    return model
