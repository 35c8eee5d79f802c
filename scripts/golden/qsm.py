"""Section `qsm`: upstream QSMDiffusion's two losses on one set of weights and one batch, with hopper's
shapes and options (cfg/gym/finetune/hopper-v2/ft_qsm_diffusion_mlp.yaml, networks and chain shrunk):

One case, `losses`, with one set of weights (network.*, critic.*, critic_target.*) and one batch:

- loss_critic (double-Q TD loss; the next chunks sampled by upstream's own forward(), i.e.
  RWR's sampler with its std floor, on injected chain noise, and scored by the target critic) with its
  gradient w.r.t. the critic, and the next chunks the target critic was given;
- loss_actor (q_grad_coeff 10, noise and timesteps injected) with its gradient w.r.t. the
  policy network.

Upstream is built from our reading of the same config (the overrides are recorded), as the other sections
build it from our configs; the test checks the recorded options against that reading.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scripts.golden import upstream_models as um
from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec import critic_obs_act_spec, diffusion_mlp_spec, torch_default_init
from shared.settings import load_settings
from shared.settings.qsm import QSMConfig

CONFIG = "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2/ft_qsm_diffusion_mlp.yaml"
OVERRIDES = ["base_policy_path=null", "model.actor.mlp_dims=[8,8,8]", "model.critic.mlp_dims=[8]",
             "model.actor.time_dim=8", "denoising_steps=5", "train.batch_size=6"]
PREFIXES = {"critic_q.": "critic.", "target_q.": "critic_target."}


def _config() -> QSMConfig:
    from scripts.golden.make_fixtures import REPO

    cfg = load_settings(str(REPO / CONFIG), OVERRIDES, ("finetune",))
    assert isinstance(cfg, QSMConfig)
    return cfg


def _params(cfg: QSMConfig) -> dict[str, np.ndarray]:
    """network.*, critic.* and a target critic.* unlike it (the critic plus a seeded perturbation)."""
    params = {f"network.{k}": v for k, v in torch_default_init(diffusion_mlp_spec(cfg.diffusion.network), 960).items()}
    critic = torch_default_init(critic_obs_act_spec(cfg.critic), 961)
    rng = np.random.default_rng(962)
    params.update((f"critic.{k}", v) for k, v in critic.items())
    params.update((f"critic_target.{k}", f32(v + 0.1 * rng.standard_normal(v.shape))) for k, v in critic.items())
    return params


def _upstream(cfg: QSMConfig, params: dict[str, np.ndarray]) -> Any:
    """Upstream QSMDiffusion with its DiffusionMLP actor and CriticObsAct critic, weights loaded."""
    from model.common.critic import CriticObsAct
    from model.diffusion.diffusion_qsm import QSMDiffusion
    from model.diffusion.mlp_diffusion import DiffusionMLP

    net, c, dc = cfg.diffusion.network, cfg.critic, cfg.diffusion
    actor = DiffusionMLP(net.action_dim, net.horizon_steps, net.cond_dim, time_dim=net.time_dim,
                         mlp_dims=list(net.mlp_dims), activation_type=net.activation_type,
                         residual_style=net.residual_style)
    critic = CriticObsAct(c.cond_dim, list(c.mlp_dims), c.action_dim, c.action_steps,
                          activation_type=c.activation_type, residual_tyle=c.residual_tyle,
                          residual_style=c.residual_style)
    model = QSMDiffusion(actor=actor, critic=critic, min_sampling_denoising_std=cfg.qsm.min_sampling_denoising_std,
                         **um._model_kwargs(dc))
    load_weights(model, params, PREFIXES)
    return model


def _meta(cfg: QSMConfig) -> dict:
    s, dc = cfg.qsm, cfg.diffusion
    return {"kind": "losses", "config": CONFIG, "overrides": OVERRIDES, "gamma": s.gamma,
            "q_grad_coeff": s.q_grad_coeff,
            "min_sampling_denoising_std": s.min_sampling_denoising_std, "diffusion": um.config_meta(dc),
            "critic": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.critic.__dict__.items()}}


def build(ctx: Context) -> None:
    import torch

    ctx.inject("model.diffusion.diffusion", "model.diffusion.diffusion_rwr", "model.diffusion.diffusion_qsm")
    cfg = _config()
    dc, s = cfg.diffusion, cfg.qsm
    B, TA, DA, TO, DO = s.batch_size, dc.horizon_steps, dc.action_dim, dc.cond_steps, dc.obs_dim
    params = _params(cfg)
    rng = ctx.rng("qsm_batch")
    batch = {"obs": f32(rng.uniform(-1, 1, (B, TO, DO))), "next_obs": f32(rng.uniform(-1, 1, (B, TO, DO))),
             "actions": f32(rng.uniform(-1, 1, (B, TA, DA))), "rewards": f32(rng.normal(0.0, 0.5, B)),
             "terminated": f32(np.arange(B) % 3 == 0)}
    chain_noise = f32(rng.standard_normal((dc.denoising_steps + 1, B, TA, DA)))
    chain_noise[2, 0, 0, 0] = 3.6  # beyond randn_clip_value: the clip is exercised
    t = rng.integers(0, dc.denoising_steps, B).astype(np.int64)
    noise = f32(rng.standard_normal((B, TA, DA)))
    assert dc.randn_clip_value < 3.6 and s.q_grad_coeff == 10.0

    def tensors(dt: torch.dtype) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v).to(dt) for k, v in batch.items()}

    def run(f64: bool) -> dict:
        model = _upstream(cfg, params)
        seen = []
        model.target_q.register_forward_hook(lambda mod, args, out: seen.append(args[1].detach()))
        b = tensors(torch.get_default_dtype())
        obs = {"state": b["obs"]}
        critic_loss = model.loss_critic(obs, {"state": b["next_obs"]}, b["actions"], b["rewards"], b["terminated"],
                                        s.gamma)
        critic = list(model.critic_q.named_parameters())
        critic_grads = torch.autograd.grad(critic_loss, [p for _, p in critic])
        actor_loss = model.loss_actor(obs, b["actions"], s.q_grad_coeff)
        network = list(model.network.named_parameters())
        actor_grads = torch.autograd.grad(actor_loss, [p for _, p in network])
        assert len(seen) == 1
        return {"critic_loss": to_np(critic_loss), "next_actions": to_np(seen[0]), "actor_loss": to_np(actor_loss),
                **{f"grad/critic.{n}": to_np(g) for (n, _), g in zip(critic, critic_grads)},
                **{f"grad/network.{n}": to_np(g) for (n, _), g in zip(network, actor_grads)}}

    # upstream draws the chain's S + 1 randn (loss_critic's forward), then loss_actor's randn_like and randint
    up32, up64 = ctx.double_run(run, [*chain_noise, noise, t])
    ctx.case("losses", _meta(cfg), {**batch, "chain_noise": chain_noise, "t": t, "noise": noise,
                                    **{f"param/{k}": v for k, v in params.items()}}, up32, up64)
