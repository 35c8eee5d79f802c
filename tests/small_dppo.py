"""A small DPPO agent from the hopper fine-tuning config, for unit tests of either twin."""

from __future__ import annotations

from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent, noise_shape
from shared.settings import FinetuneConfig, load_settings

DPPO_CONFIG = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
SMALL = ["base_policy_path=null", "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]",
         "denoising_steps=8", "ft_denoising_steps=3", "train.batch_size=12", "train.update_epochs=2"]
DDIM = ["model.use_ddim=true", "model.ddim_steps=4"]


def small_agent(backend: str, overrides: list[str]) -> tuple[FinetuneConfig, Any]:
    cfg = load_settings(DPPO_CONFIG, [*SMALL, *overrides], ("finetune",))
    return cfg, make_agent(cfg, backend)


def inputs(cfg: FinetuneConfig, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Observations (n, To, Do) and chain noise (S+1, n, Ta, Da)."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, cfg.cond_steps, cfg.obs_dim)).astype(np.float32)
    return obs, rng.standard_normal(noise_shape(cfg, n)).astype(np.float32)


def buffer(cfg: FinetuneConfig, agent: Any, n: int, seed: int) -> dict[str, np.ndarray]:
    """Samples drawn and scored by `agent`, random advantages and returns."""
    obs, noise = inputs(cfg, n, seed)
    sample = agent.act(obs, noise, deterministic=False)
    values, logprobs = agent.evaluate(obs, sample)
    rng = np.random.default_rng(seed + 1)
    f32 = np.float32
    return {"obs": obs, **{k: v.astype(f32) for k, v in sample.items()}, "logprobs": logprobs.astype(f32),
            "values": values.astype(f32), "advantages": (3 * rng.standard_normal(n) + 1).astype(f32),
            "returns": (values + rng.standard_normal(n)).astype(f32)}
