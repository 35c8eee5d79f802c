"""Gaussian MLP policy + critic trained with PPO (upstream's ppo_gaussian_mlp), torch side."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from core_torch.algorithms.ppo_agent import PPOAgent
from core_torch.algorithms.ppo_loss import (
    clipped_policy_loss,
    normal_entropy,
    normal_logprob,
    normalize_advantages,
    value_loss,
)
from core_torch.networks.critic import CriticObs
from core_torch.networks.registry import build_network
from core_torch.runtime.canonical import load_state
from shared.algorithms.ppo_math import GAUSSIAN_EVAL_STD
from shared.param_spec import CriticObsConfig, GaussianMLPConfig
from shared.settings import PPOSettings


class PPOGaussianModel(nn.Module):
    def __init__(self, actor: GaussianMLPConfig, critic: CriticObsConfig, randn_clip_value: float) -> None:
        super().__init__()
        self.actor = build_network(actor)
        self.critic = CriticObs.from_config(critic)
        self.randn_clip_value = randn_clip_value


class PPOGaussianAgent(PPOAgent):
    """act / evaluate / update on numpy arrays. Chunks: (N, Ta, Da); noise (N, Ta*Da)."""

    def __init__(self, actor: GaussianMLPConfig, critic: CriticObsConfig, settings: PPOSettings,
                 init_params: OrderedDict, randn_clip_value: float = 3.0) -> None:
        model = PPOGaussianModel(actor, critic, randn_clip_value)
        load_state(model, init_params)
        super().__init__(model, "actor.", settings)
        self.chunk = (actor.horizon_steps, actor.action_dim)

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        mean, std = self.model.actor(torch.from_numpy(obs))
        if deterministic:  # upstream still samples, with a tiny std
            std = torch.full_like(mean, GAUSSIAN_EVAL_STD)
        c = self.model.randn_clip_value
        actions = mean + std * torch.from_numpy(noise).clamp(-c, c)
        return {"actions": actions.reshape(len(obs), *self.chunk).numpy()}

    def _logprob_entropy(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = self.model.actor(obs)
        return normal_logprob(actions.reshape(len(obs), -1), mean, std).mean(-1), normal_entropy(std).mean()

    @torch.no_grad()
    def evaluate(self, obs: np.ndarray, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), log-probs (N,)) of the rollout's samples under the current policy."""
        o = torch.from_numpy(obs)
        logprobs, _ = self._logprob_entropy(o, torch.from_numpy(sample["actions"]))
        return self.model.critic(o).reshape(-1).numpy(), logprobs.numpy()

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> np.ndarray:
        return self.model.critic(torch.from_numpy(obs)).reshape(-1).numpy()

    def loss_terms(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        s = self.settings
        newlogprobs, entropy = self._logprob_entropy(b["obs"], b["actions"])
        adv = b["advantages"]
        if s.norm_adv:
            adv = normalize_advantages(adv)  # upstream's Gaussian PPO clips no quantiles
        pg_loss, approx_kl, clipfrac = clipped_policy_loss(newlogprobs, b["logprobs"], adv, s.clip_ploss_coef)
        v_loss = value_loss(self.model.critic(b["obs"]).reshape(-1), b["returns"], b["values"], s.clip_vloss_coef)
        return {"pg_loss": pg_loss, "entropy_loss": -entropy, "v_loss": v_loss, "approx_kl": approx_kl,
                "clipfrac": clipfrac}
