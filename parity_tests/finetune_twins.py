"""Build torch and TF PPO agents (DPPO or Gaussian) from one config and one canonical init."""

from __future__ import annotations

from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent, noise_shape
from shared.precision import as_compute
from shared.settings import FinetuneConfig, load_settings

DPPO_CONFIG = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
GAUSSIAN_CONFIG = "configs/hopper/ppo_gaussian_mlp.yaml"
SMALL_DPPO = ["model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]", "denoising_steps=8",
              "ft_denoising_steps=4", "train.batch_size=12", "train.update_epochs=2"]
SMALL_GAUSSIAN = ["model.actor.mlp_dims=[16,16]", "model.critic.mlp_dims=[16,16,16]", "train.batch_size=12",
                  "train.update_epochs=2"]


def agents(path: str, overrides: list[str]) -> tuple[FinetuneConfig, dict[str, Any]]:
    cfg = load_settings(path, ["base_policy_path=null", *overrides], ("finetune",))
    return cfg, {b: make_agent(cfg, b) for b in ("torch", "tf")}


def rollout_buffer(cfg: FinetuneConfig, agent: Any, n: int, seed: int) -> dict[str, np.ndarray]:
    """A synthetic but self-consistent buffer: samples drawn by `agent`, scored by it, random advantages
    (float32 draws, held in the compute dtype)."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    obs = as_compute(rng.uniform(-1, 1, (n, cfg.cond_steps, cfg.obs_dim)).astype(f32))
    noise = as_compute(rng.standard_normal(noise_shape(cfg, n)).astype(f32))
    sample = agent.act(obs, noise, deterministic=False)
    values, logprobs = agent.evaluate(obs, sample)
    return {"obs": obs, **{k: as_compute(v) for k, v in sample.items()}, "logprobs": as_compute(logprobs),
            "values": as_compute(values), "advantages": as_compute(rng.standard_normal(n).astype(f32)),
            "returns": as_compute(values + rng.standard_normal(n).astype(f32))}
