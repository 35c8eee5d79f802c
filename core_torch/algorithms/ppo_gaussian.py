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
from core_torch.networks.inputs import Cond, cond_inputs, obs_tensors, state_input
from core_torch.networks.registry import build_network
from core_torch.runtime.canonical import load_state
from shared.algorithms.ppo_math import GAUSSIAN_EVAL_STD
from shared.data import observations as ob
from shared.param_spec import CriticObsConfig, GaussianMLPConfig
from shared.settings import PPOSettings


class PPOGaussianModel(nn.Module):
    def __init__(self, actor: GaussianMLPConfig, critic: CriticObsConfig, randn_clip_value: float) -> None:
        super().__init__()
        self.actor = build_network(actor)
        self.critic = build_network(critic)  # CriticObs, or a ViTCritic
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
    def act(self, obs: ob.Obs, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        mean, std = self.model.actor(*cond_inputs(obs_tensors(obs)))
        if deterministic:  # upstream still samples, with a tiny std
            std = torch.full_like(mean, GAUSSIAN_EVAL_STD)
        c = self.model.randn_clip_value
        actions = mean + std * torch.from_numpy(noise).clamp(-c, c)
        return {"actions": actions.reshape(ob.batch_len(obs), *self.chunk).numpy()}

    def _logprob_entropy(self, obs: Cond, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = self.model.actor(*cond_inputs(obs))
        n = len(state_input(obs))
        return normal_logprob(actions.reshape(n, -1), mean, std).mean(-1), normal_entropy(std).mean()

    @torch.no_grad()
    def evaluate(self, obs: ob.Obs, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), log-probs (N,)) of the rollout's samples under the current policy."""
        o = obs_tensors(obs)
        logprobs, _ = self._logprob_entropy(o, torch.from_numpy(sample["actions"]))
        return self.model.critic(*cond_inputs(o)).reshape(-1).numpy(), logprobs.numpy()

    @torch.no_grad()
    def value(self, obs: ob.Obs) -> np.ndarray:
        return self.model.critic(*cond_inputs(obs_tensors(obs))).reshape(-1).numpy()

    def loss_terms(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        s = self.settings
        newlogprobs, entropy = self._logprob_entropy(b["obs"], b["actions"])
        adv = b["advantages"]
        if s.norm_adv:
            adv = normalize_advantages(adv)  # upstream's Gaussian PPO clips no quantiles
        pg_loss, approx_kl, clipfrac = clipped_policy_loss(newlogprobs, b["logprobs"], adv, s.clip_ploss_coef)
        v_loss = value_loss(self.model.critic(*cond_inputs(b["obs"])).reshape(-1), b["returns"], b["values"],
                            s.clip_vloss_coef)
        return {"pg_loss": pg_loss, "entropy_loss": -entropy, "v_loss": v_loss, "approx_kl": approx_kl,
                "clipfrac": clipfrac}
