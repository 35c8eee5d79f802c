"""Our twins rebuilt from a golden case's recorded options and weights."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from shared.diffusion.eta import EtaConfig, eta_config, eta_init
from shared.lr_schedule import CosineWarmupRestarts
from shared.param_spec import CriticObsConfig, DiffusionMLPConfig, critic_obs_spec, torch_default_init
from shared.settings import DiffusionConfig, DPPOSettings, PPOSettings


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def diffusion_config(meta: dict) -> DiffusionConfig:
    d = dict(meta)
    return DiffusionConfig(network=DiffusionMLPConfig(**_tuples(d.pop("network"))), **d)


def critic_config(meta: dict) -> CriticObsConfig:
    return CriticObsConfig(**_tuples(meta))


def eta_settings(meta: dict) -> EtaConfig | None:
    """The case's upstream eta module (EtaFixed / EtaAction) as our EtaConfig; None without one."""
    eta = meta.get("eta")
    if not eta:
        return None
    net = meta["diffusion"]["network"]
    section = {"_target_": eta["kind"], **{k: eta[k] for k in ("base_eta", "min_eta", "max_eta")}}
    return eta_config(section, net["action_dim"], net["cond_dim"])


def with_eta(params: dict[str, np.ndarray], eta: EtaConfig | None) -> OrderedDict:
    """params plus eta.* at upstream's initialisation where the case stored none (EtaFixed's logit)."""
    out = OrderedDict(params)
    if eta is not None and not any(k.startswith("eta.") for k in out):
        out.update(eta_init(eta, 0))
    return out


def dppo_settings(meta: dict, **over: Any) -> DPPOSettings:
    """DPPO options from a case, with its eta module."""
    kw = dict(ft_denoising_steps=meta["dppo"]["ft_denoising_steps"], gamma_denoising=0.99,
              clip_ploss_coef_base=1e-3, clip_ploss_coef_rate=3.0,
              min_sampling_denoising_std=meta["dppo"]["min_sampling_denoising_std"],
              min_logprob_denoising_std=meta["dppo"]["min_logprob_denoising_std"], reward_horizon=1,
              use_bc_loss=False, bc_loss_coeff=0.0, eta=eta_settings(meta))
    kw.update(over)
    return DPPOSettings(**kw)


def ppo_settings(**over: Any) -> PPOSettings:
    sched = CosineWarmupRestarts(first_cycle_steps=10, max_lr=1e-4, min_lr=1e-4)
    kw = dict(n_train_itr=1, n_steps=1, n_envs=1, gamma=0.99, gae_lambda=0.95, batch_size=1, update_epochs=1,
              vf_coef=0.5, ent_coef=0.0, target_kl=None, max_grad_norm=None, n_critic_warmup_itr=0,
              reward_scale_running=False, reward_scale_const=1.0, val_freq=1, save_model_freq=1, n_eval_episodes=1,
              actor_lr=1e-4, critic_lr=1e-4, actor_weight_decay=0.0, critic_weight_decay=0.0, actor_schedule=sched,
              critic_schedule=sched, clip_ploss_coef=0.01, clip_vloss_coef=None, norm_adv=True,
              clip_advantage_lower_quantile=0.0, clip_advantage_upper_quantile=1.0)
    kw.update(over)
    return PPOSettings(**kw)


def with_critic(params: dict[str, np.ndarray], critic: CriticObsConfig) -> OrderedDict:
    """params plus critic.* (seeded filler) where the case stored none: the model loads strictly."""
    out = OrderedDict(params)
    if not any(k.startswith("critic.") for k in out):
        out.update((f"critic.{k}", v) for k, v in torch_default_init(critic_obs_spec(critic), 0).items())
    return out


