"""Build the agent a fine-tuning (or evaluation) config describes, for either backend. Which agent, from which
weights, is the config's algorithm's business (its driver module, found through the registry); an evaluation
config's policy is built here."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

from dppo.algorithms.registry import backend_class, driver
from dppo.algorithms.starting_weights import base_policy_params, dppo_spec
from dppo.checkpoints.formats import read_checkpoint
from shared.checkpoint import Checkpoint, check_strict
from shared.errors import CheckpointError, ConfigError
from shared.param_spec import CriticObsConfig, critic_obs_spec, torch_default_init
from shared.param_spec.families import family_init_over, network_spec
from shared.settings import DPPOSettings, EvalConfig, GaussianModelConfig, PPOSettings


def noise_shape(cfg: Any, n: int) -> tuple[int, ...]:
    """Shape of the numpy noise one policy step of n envs consumes: a chain per env (S + 1, n, Ta, Da) for a
    diffusion policy, (n, Ta * Da) for a Gaussian one, unless the algorithm's driver says otherwise."""
    if not isinstance(cfg, EvalConfig):
        own = getattr(driver(cfg), "step_noise_shape", None)
        if own is not None:
            return own(cfg, n)
    if cfg.is_diffusion:
        dc = cfg.model if isinstance(cfg, EvalConfig) else cfg.diffusion
        return (dc.num_sampling_steps + 1, n, cfg.horizon_steps, cfg.action_dim)
    return (n, cfg.horizon_steps * cfg.action_dim)


def initial_params(cfg: Any) -> OrderedDict:
    """The canonical parameters a fine-tuning run of cfg starts from (its algorithm's rule)."""
    return driver(cfg).initial_params(cfg)


def make_agent(cfg: Any, backend: str, init: OrderedDict | None = None) -> Any:
    """The config's agent for `backend` from `init` (default: initial_params(cfg))."""
    d = driver(cfg)
    return d.build_agent(cfg, backend, d.initial_params(cfg) if init is None else init)


def make_eval_agent(cfg: EvalConfig, backend: str) -> Any:
    """An agent that acts like the policy of an upstream eval config (deterministic sampling).

    A diffusion policy becomes a DPPO agent: from a pre-training checkpoint, its base actor and actor_ft both
    hold the policy, so every reverse step runs the same network; from a DPPO fine-tuning checkpoint, the frozen
    base actor and the fine-tuned actor_ft with the run's number of fine-tuned steps K, as the run sampled
    (eval_finetuned_k). A Gaussian policy becomes a Gaussian PPO agent. Their critics are never used.
    """
    if not cfg.base_policy_path:
        raise ConfigError("an eval config needs base_policy_path: the policy to evaluate")
    critic = CriticObsConfig(cfg.obs_dim * cfg.cond_steps, (16,))
    ppo = _eval_ppo_settings(cfg)
    if cfg.is_diffusion:
        dc = cfg.model
        spec = dppo_spec(dc.network, critic)
        init = torch_default_init(spec, cfg.seed)
        ckpt = read_checkpoint(cfg.base_policy_path, cfg)
        if ckpt.meta.get("kind") == "finetune":
            policy_spec = OrderedDict((k, v) for k, v in spec.items() if k.startswith(("actor.", "actor_ft.")))
            weights = OrderedDict((k, v) for k, v in ckpt.group("model").items() if k in policy_spec)
            check_strict(policy_spec, weights, f"policy {cfg.base_policy_path}")
            init.update(weights)
            k = eval_finetuned_k(ckpt, cfg)
        else:
            init.update(base_policy_params(cfg.base_policy_path, spec, cfg))
            k = 1
        d = DPPOSettings(ft_denoising_steps=k, gamma_denoising=1.0, clip_ploss_coef_base=1e-3,
                         clip_ploss_coef_rate=3.0, min_sampling_denoising_std=0.1, min_logprob_denoising_std=0.1,
                         reward_horizon=cfg.act_steps, use_bc_loss=False, bc_loss_coeff=0.0)
        return backend_class(backend, "ppo_diffusion.PPODiffusionAgent")(dc, critic, ppo, d, init)
    model: GaussianModelConfig = cfg.model
    network = model.network  # evaluation runs without dropout (the agent's module mode is not the question here)
    if getattr(network, "dropout", 0.0):
        network = dataclasses.replace(network, dropout=0.0)
    spec = network_spec(network, "actor.")
    spec.update(critic_obs_spec(critic, "critic."))
    init = family_init_over(torch_default_init(spec, cfg.seed), network, cfg.seed, "actor.")
    actor = _gaussian_policy(read_checkpoint(cfg.base_policy_path, cfg).group("model"))
    check_strict(network_spec(network, "actor."), actor, f"policy {cfg.base_policy_path}")
    init.update(actor)
    return backend_class(backend, "ppo_gaussian.PPOGaussianAgent")(network, critic, ppo, init,
                                                                    model.randn_clip_value)


def eval_finetuned_k(ckpt: Checkpoint, cfg: EvalConfig) -> int:
    """How many of the last reverse steps a DPPO fine-tuning checkpoint's actor_ft runs: the run's K at the
    checkpoint (its dppo_schedule; the config's ft_denoising_steps when it has none). Upstream's eval before its
    fix (irom-princeton/dppo#29, #31) ran the frozen base network on every step, so a fine-tuned checkpoint
    evaluated as the pre-trained policy. The eval config must sample as the run did (same chain); otherwise
    the policy evaluated would not be the fine-tuned one, and it is refused."""
    run = ckpt.config.get("model", {}) if isinstance(ckpt.config.get("model"), dict) else {}
    ddim = bool(run.get("use_ddim", False))
    theirs = (run.get("denoising_steps"), ddim, run.get("ddim_steps") if ddim else None)
    dc = cfg.model
    ours = (dc.denoising_steps, dc.use_ddim, dc.ddim_steps if dc.use_ddim else None)
    if theirs != ours:
        raise ConfigError(f"{cfg.base_policy_path} was fine-tuned sampling (denoising_steps, use_ddim, ddim_steps) = "
                          f"{theirs}; this eval config samples {ours}: set its model to the run's chain")
    if "dppo_schedule" in ckpt.groups:
        return int(ckpt.groups["dppo_schedule"]["ft_denoising_steps"])
    k = run.get("ft_denoising_steps", ckpt.config.get("ft_denoising_steps"))
    if not isinstance(k, int):
        raise CheckpointError(f"{cfg.base_policy_path} is a fine-tuning checkpoint with neither its schedule nor "
                              "ft_denoising_steps: which steps its actor_ft runs is unknown")
    return k


def _gaussian_policy(weights: OrderedDict) -> OrderedDict:
    """The actor.* tensors of a Gaussian checkpoint's `model` group: a Gaussian PPO checkpoint's actor.*, or a
    Gaussian pre-training checkpoint's network.* renamed (upstream's GaussianModel loads `model` too, not `ema`)."""
    if not any(k.startswith("actor.") for k in weights):
        return OrderedDict((f"actor.{k[len('network.'):]}", v) for k, v in weights.items() if k.startswith("network."))
    return OrderedDict((k, v) for k, v in weights.items() if k.startswith("actor."))


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

