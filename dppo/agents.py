"""Build the agent a fine-tuning (or evaluation) config describes, for either backend: DPPO (with
per-step or exact likelihoods), Gaussian PPO, RWR or AWR."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from dppo.checkpoints import read_checkpoint
from shared.checkpoint import check_strict
from shared.errors import CheckpointError, ConfigError
from shared.eta import eta_init, eta_spec
from shared.param_spec import (
    CriticObsConfig,
    critic_obs_act_spec,
    critic_obs_spec,
    diffusion_mlp_spec,
    gaussian_mlp_spec,
    torch_default_init,
)
from shared.settings import (
    AWRConfig,
    DiffusionConfig,
    DPPOSettings,
    DQLConfig,
    EvalConfig,
    FinetuneConfig,
    GaussianModelConfig,
    IDQLConfig,
    PPOSettings,
    RWRConfig,
)


def noise_shape(cfg: FinetuneConfig | RWRConfig | AWRConfig | EvalConfig, n: int) -> tuple[int, ...]:
    """Shape of the numpy noise one policy step of n envs consumes."""
    ta, da = cfg.horizon_steps, cfg.action_dim
    if isinstance(cfg, IDQLConfig):  # S candidate chains per observation and the choice's normals
        from shared.idql import noise_shape as idql_noise_shape

        return idql_noise_shape(cfg.diffusion.denoising_steps, cfg.idql.num_sample, n, ta, da)
    if cfg.is_diffusion:
        return (_diffusion(cfg).num_sampling_steps + 1, n, ta, da)
    return (n, ta * da)


def _diffusion(cfg: FinetuneConfig | RWRConfig | AWRConfig | EvalConfig) -> DiffusionConfig:
    return cfg.model if isinstance(cfg, EvalConfig) else cfg.diffusion


def base_policy_params(path: str, spec: OrderedDict, config: Any) -> OrderedDict:
    """Starting weights for a DPPO agent from `path`.

    A pre-training checkpoint gives its EMA policy (as upstream) to both actor and actor_ft; the
    critic and a DDIM eta keep their fresh initialisation. A fine-tuning checkpoint gives its whole model, as
    upstream restores it: frozen base actor, fine-tuned actor_ft and critic.
    """
    ckpt = read_checkpoint(path, config)
    if ckpt.meta.get("kind") == "finetune":
        weights = ckpt.group("model")
        check_strict(spec, weights, f"base policy {path}")
        return OrderedDict(weights)
    group = "ema" if "ema" in ckpt.groups else "model"
    weights = ckpt.group(group)
    base = OrderedDict((k[len("network."):], v) for k, v in weights.items() if k.startswith("network."))
    if not base:
        raise CheckpointError(f"{path} [{group}] holds no pre-trained diffusion policy (network.* tensors)")
    policy = OrderedDict((f"{p}{k}", v) for p in ("actor.", "actor_ft.") for k, v in base.items())
    check_strict({k: v for k, v in spec.items() if not k.startswith(("critic.", "eta."))}, policy,
                 f"base policy {path}")
    return policy


def _backend_class(backend: str, module: str, name: str) -> Any:
    if backend not in ("torch", "tf"):
        raise ConfigError(f"unknown backend {backend!r}; choose torch or tf")
    import importlib

    return getattr(importlib.import_module(f"core_{backend}.{module}"), name)


def _dppo_spec(network: Any, critic: CriticObsConfig) -> OrderedDict:
    """Canonical names and shapes of a DPPO model: base actor, actor_ft and critic."""
    spec = diffusion_mlp_spec(network, "actor.")
    spec.update(diffusion_mlp_spec(network, "actor_ft."))
    spec.update(critic_obs_spec(critic, "critic."))
    return spec


def initial_params(cfg: FinetuneConfig) -> OrderedDict:
    """The canonical parameters a fine-tuning run starts from: a fresh init from cfg.seed, with the
    base policy (or a Gaussian PPO checkpoint) loaded over it when base_policy_path is set."""
    if not cfg.is_diffusion:
        return _gaussian_params(cfg)
    d = cfg.dppo
    spec = _dppo_spec(cfg.diffusion.network, cfg.critic)
    init = torch_default_init(spec, cfg.seed)
    if d.eta is not None:  # upstream builds eta whenever model.eta is given (DDPM never reads it)
        spec.update(eta_spec(d.eta))
        init.update(eta_init(d.eta, cfg.seed))
    if cfg.base_policy_path:  # else a fresh policy (`dppo finetune` warns; parity and bench want it)
        init.update(base_policy_params(cfg.base_policy_path, spec, cfg))
    return init


def bc_noise_shape(cfg: FinetuneConfig) -> tuple[int, ...] | None:
    """Per-row shape (S+1, Ta, Da) of the teacher-chain noise the BC term needs, or None without BC."""
    if not (cfg.is_diffusion and cfg.train.use_bc_loss):
        return None
    return noise_shape(cfg, 1)[:1] + (cfg.horizon_steps, cfg.action_dim)


def _gaussian_params(cfg: FinetuneConfig) -> OrderedDict:
    actor, critic = cfg.gaussian_actor, cfg.critic
    overrides = {"actor.logvar": math.log(actor.fixed_std**2)} if actor.learn_fixed_std else None
    spec = gaussian_mlp_spec(actor, "actor.")
    spec.update(critic_obs_spec(critic, "critic."))
    init = torch_default_init(spec, cfg.seed, overrides)
    if cfg.base_policy_path:  # a Gaussian PPO checkpoint: start from (or evaluate) its actor and critic
        weights = read_checkpoint(cfg.base_policy_path, cfg).group("model")
        check_strict(spec, weights, f"base policy {cfg.base_policy_path}")
        init.update(weights)
    return init


def regression_initial_params(cfg: RWRConfig | AWRConfig) -> OrderedDict:
    """What an RWR or AWR run starts from: a fresh init from cfg.seed (AWR: policy and critic), with
    base_policy_path's policy loaded over it (a pre-training checkpoint's EMA policy, as upstream, or a
    fine-tuning checkpoint's network.*; an AWR checkpoint's critic too)."""
    spec = diffusion_mlp_spec(cfg.diffusion.network, "network.")
    if isinstance(cfg, AWRConfig):
        spec.update(critic_obs_spec(cfg.critic, "critic."))
    init = torch_default_init(spec, cfg.seed)
    if not cfg.base_policy_path:  # `dppo finetune` warns; parity wants a fresh policy
        return init
    ckpt = read_checkpoint(cfg.base_policy_path, cfg)
    group = "ema" if "ema" in ckpt.groups else "model"
    weights = OrderedDict((k, v) for k, v in ckpt.group(group).items() if k.startswith("network."))
    if not weights:
        raise CheckpointError(f"{cfg.base_policy_path} [{group}] holds no diffusion policy (network.* tensors)")
    if isinstance(cfg, AWRConfig) and ckpt.meta.get("algorithm") == "awr":
        weights.update((k, v) for k, v in ckpt.group(group).items() if k.startswith("critic."))
    check_strict({k: v for k, v in spec.items() if k in weights or k.startswith("network.")}, weights,
                 f"base policy {cfg.base_policy_path}")
    init.update(weights)
    return init


def dql_initial_params(cfg: DQLConfig) -> OrderedDict:
    """DQL starts as RWR does (base_policy_path's policy over a fresh init from cfg.seed) with a fresh double-Q
    critic (from cfg.seed + 1) and its target, a copy of it (upstream deep-copies the critic)."""
    init = regression_initial_params(cfg)
    critic = torch_default_init(critic_obs_act_spec(cfg.critic, "critic."), cfg.seed + 1)
    init.update(critic)
    init.update((f"critic_target.{k[len('critic.'):]}", v.copy()) for k, v in critic.items())
    return init


def idql_initial_params(cfg: IDQLConfig) -> OrderedDict:
    """What an IDQL run starts from: a fresh init from cfg.seed (policy, critic_q, critic_v), base_policy_path's
    policy loaded over it (a pre-training checkpoint's EMA policy, as upstream, or a fine-tuning checkpoint's
    network.*; an IDQL checkpoint's critics too), and critic_q_target a copy of critic_q (upstream deep-copies)."""
    spec = diffusion_mlp_spec(cfg.diffusion.network, "network.")
    spec.update(critic_obs_act_spec(cfg.critic_q, "critic_q."))
    spec.update(critic_obs_spec(cfg.critic_v, "critic_v."))
    spec.update(critic_obs_act_spec(cfg.critic_q, "critic_q_target."))
    init = torch_default_init(spec, cfg.seed)
    init.update((f"critic_q_target.{k[len('critic_q.'):]}", v.copy()) for k, v in list(init.items())
                if k.startswith("critic_q."))
    if not cfg.base_policy_path:  # `dppo finetune` warns; parity wants a fresh policy
        return init
    ckpt = read_checkpoint(cfg.base_policy_path, cfg)
    group = "ema" if "ema" in ckpt.groups else "model"
    prefixes = ("network.", "critic_q.", "critic_v.", "critic_q_target.") if ckpt.meta.get(
        "algorithm") == "idql" else ("network.",)
    weights = OrderedDict((k, v) for k, v in ckpt.group(group).items() if k.startswith(prefixes))
    if not any(k.startswith("network.") for k in weights):
        raise CheckpointError(f"{cfg.base_policy_path} [{group}] holds no diffusion policy (network.* tensors)")
    check_strict({k: v for k, v in spec.items() if k.startswith(prefixes)}, weights,
                 f"base policy {cfg.base_policy_path}")
    init.update(weights)
    return init


def make_agent(cfg: FinetuneConfig | RWRConfig | AWRConfig, backend: str, init: OrderedDict | None = None) -> Any:
    """The config's agent for `backend` from `init` (default: initial_params, or regression_initial_params)."""
    if isinstance(cfg, IDQLConfig):
        init = idql_initial_params(cfg) if init is None else init
        return _backend_class(backend, "idql_diffusion", "IDQLDiffusionAgent")(cfg.diffusion, cfg.critic_q,
                                                                               cfg.critic_v, cfg.idql, init)
    if isinstance(cfg, RWRConfig):
        init = regression_initial_params(cfg) if init is None else init
        return _backend_class(backend, "rwr_diffusion", "RWRDiffusionAgent")(cfg.diffusion, cfg.rwr, init)
    if isinstance(cfg, AWRConfig):
        init = regression_initial_params(cfg) if init is None else init
        return _backend_class(backend, "awr_diffusion", "AWRDiffusionAgent")(cfg.diffusion, cfg.critic, cfg.awr,
                                                                             init)
    if getattr(cfg, "algorithm", "") == "qsm":
        from dppo.qsm import qsm_initial_params

        init = qsm_initial_params(cfg) if init is None else init
        return _backend_class(backend, "qsm_diffusion", "QSMDiffusionAgent")(cfg.diffusion, cfg.critic, cfg.qsm, init)
    if getattr(cfg, "algorithm", "") == "dipo":
        from dppo.dipo import dipo_initial_params

        init = dipo_initial_params(cfg) if init is None else init
        return _backend_class(backend, "dipo_diffusion", "DIPODiffusionAgent")(cfg.diffusion, cfg.critic, cfg.dipo,
                                                                               init)
    if isinstance(cfg, DQLConfig):
        init = dql_initial_params(cfg) if init is None else init
        return _backend_class(backend, "dql_diffusion", "DQLDiffusionAgent")(cfg.diffusion, cfg.critic, cfg.dql, init)
    init = initial_params(cfg) if init is None else init
    if cfg.is_exact:
        agent_cls = _backend_class(backend, "ppo_exact_diffusion", "PPOExactDiffusionAgent")
        return agent_cls(cfg.diffusion, cfg.critic, cfg.ppo, cfg.dppo, cfg.model.likelihood(), init)
    if cfg.is_diffusion:
        agent_cls = _backend_class(backend, "ppo_diffusion", "PPODiffusionAgent")
        return agent_cls(cfg.diffusion, cfg.critic, cfg.ppo, cfg.dppo, init)
    agent_cls = _backend_class(backend, "ppo_gaussian", "PPOGaussianAgent")
    return agent_cls(cfg.gaussian_actor, cfg.critic, cfg.ppo, init, cfg.model.randn_clip_value)


def make_eval_agent(cfg: EvalConfig, backend: str) -> Any:
    """An agent that acts like the policy of an upstream eval config (deterministic sampling).

    A diffusion policy becomes a DPPO agent whose base actor and actor_ft both hold the policy,
    so every reverse step runs the same network; a Gaussian policy a Gaussian PPO agent. Their
    critics are never used.
    """
    if not cfg.base_policy_path:
        raise ConfigError("an eval config needs base_policy_path: the policy to evaluate")
    critic = CriticObsConfig(cfg.obs_dim * cfg.cond_steps, (16,))
    ppo = _eval_ppo_settings(cfg)
    if cfg.is_diffusion:
        dc = cfg.model
        spec = _dppo_spec(dc.network, critic)
        init = torch_default_init(spec, cfg.seed)
        init.update(base_policy_params(cfg.base_policy_path, spec, cfg))
        d = DPPOSettings(ft_denoising_steps=1, gamma_denoising=1.0, clip_ploss_coef_base=1e-3,
                         clip_ploss_coef_rate=3.0, min_sampling_denoising_std=0.1, min_logprob_denoising_std=0.1,
                         reward_horizon=cfg.act_steps, use_bc_loss=False, bc_loss_coeff=0.0)
        return _backend_class(backend, "ppo_diffusion", "PPODiffusionAgent")(dc, critic, ppo, d, init)
    model: GaussianModelConfig = cfg.model
    spec = gaussian_mlp_spec(model.network, "actor.")
    spec.update(critic_obs_spec(critic, "critic."))
    init = torch_default_init(spec, cfg.seed)
    weights = read_checkpoint(cfg.base_policy_path, cfg).group("model")
    check_strict(gaussian_mlp_spec(model.network, "actor."), {k: v for k, v in weights.items()
                                                               if k.startswith("actor.")},
                 f"policy {cfg.base_policy_path}")
    init.update({k: v for k, v in weights.items() if k.startswith("actor.")})
    agent_cls = _backend_class(backend, "ppo_gaussian", "PPOGaussianAgent")
    return agent_cls(model.network, critic, ppo, init, model.randn_clip_value)


def _eval_ppo_settings(cfg: EvalConfig) -> PPOSettings:
    """PPO settings an evaluation-only agent is built with (no update ever runs)."""
    from shared.lr_schedule import CosineWarmupRestarts

    flat = CosineWarmupRestarts(first_cycle_steps=1, max_lr=1e-4, min_lr=1e-4)
    return PPOSettings(
        n_train_itr=1, n_steps=cfg.n_steps, n_envs=cfg.env.n_envs, gamma=0.99, gae_lambda=0.95, batch_size=1,
        update_epochs=1, vf_coef=0.0, ent_coef=0.0, target_kl=None, max_grad_norm=None, n_critic_warmup_itr=0,
        reward_scale_running=False, reward_scale_const=1.0, val_freq=1, save_model_freq=1,
        n_eval_episodes=cfg.env.n_envs, actor_lr=1e-4, critic_lr=1e-4, actor_weight_decay=0.0,
        critic_weight_decay=0.0, actor_schedule=flat, critic_schedule=flat, clip_ploss_coef=0.1,
        clip_vloss_coef=None, norm_adv=True, clip_advantage_lower_quantile=0.0, clip_advantage_upper_quantile=1.0)
