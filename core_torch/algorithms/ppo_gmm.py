"""A GMM policy + critic trained with PPO (upstream model/rl/gmm_ppo.py PPO_GMM, run by its Gaussian PPO agent),
torch side. The actor is any network giving (means, stds, logits) (GMM_MLP, GMM_Transformer); its trained copy
is upstream's network = actor_ft, here `actor.`."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from core_torch.algorithms.gmm import mixture_entropy, mixture_logprob, mixture_std, sample_mixture
from core_torch.algorithms.ppo_agent import PPOAgent
from core_torch.algorithms.ppo_loss import clipped_policy_loss, normalize_advantages, value_loss
from core_torch.networks.critic import CriticObs
from core_torch.networks.registry import build_network
from core_torch.runtime.canonical import load_state
from shared.algorithms.gmm import split_step_noise
from shared.param_spec import CriticObsConfig
from shared.param_spec.families import GMMNetworkConfig
from shared.settings import PPOSettings


class PPOGMMModel(nn.Module):
    def __init__(self, actor: GMMNetworkConfig, critic: CriticObsConfig) -> None:
        super().__init__()
        self.actor = build_network(actor)
        self.critic = CriticObs.from_config(critic)


class PPOGMMAgent(PPOAgent):
    """act / evaluate / update on numpy arrays. Chunks: (N, Ta, Da); a step's noise (N, Ta*Da + 1)
    (shared/algorithms/gmm.py)."""

    def __init__(self, actor: GMMNetworkConfig, critic: CriticObsConfig, settings: PPOSettings,
                 init_params: OrderedDict) -> None:
        model = PPOGMMModel(actor, critic)
        load_state(model, init_params)
        super().__init__(model, "actor.", settings)
        self.chunk = (actor.horizon_steps, actor.action_dim)

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        eps, u = split_step_noise(noise)
        means, stds, logits = self.model.actor(torch.from_numpy(obs))
        actions = sample_mixture(means, stds, logits, torch.from_numpy(eps), torch.from_numpy(u), deterministic)
        return {"actions": actions.reshape(len(obs), *self.chunk).numpy()}

    def logprob_entropy_std(self, obs: torch.Tensor,
                            actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mixture log-probs (N,) of the flattened chunks, approximate entropy, mean std) (upstream get_logprobs)."""
        means, stds, logits = self.model.actor(obs)
        logprobs = mixture_logprob(actions.reshape(len(obs), -1), means, stds, logits)
        return logprobs, mixture_entropy(stds, logits), mixture_std(stds, logits)

    @torch.no_grad()
    def evaluate(self, obs: np.ndarray, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), log-probs (N,)) of the rollout's samples under the current policy."""
        o = torch.from_numpy(obs)
        logprobs, _, _ = self.logprob_entropy_std(o, torch.from_numpy(sample["actions"]))
        return self.model.critic(o).reshape(-1).numpy(), logprobs.numpy()

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> np.ndarray:
        return self.model.critic(torch.from_numpy(obs)).reshape(-1).numpy()

    def loss_terms(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        s = self.settings
        newlogprobs, entropy, std = self.logprob_entropy_std(b["obs"], b["actions"])
        adv = b["advantages"]
        if s.norm_adv:
            adv = normalize_advantages(adv)  # upstream's PPO_GMM clips no quantiles
        pg_loss, approx_kl, clipfrac = clipped_policy_loss(newlogprobs, b["logprobs"], adv, s.clip_ploss_coef)
        v_loss = value_loss(self.model.critic(b["obs"]).reshape(-1), b["returns"], b["values"], s.clip_vloss_coef)
        return {"pg_loss": pg_loss, "entropy_loss": -entropy, "v_loss": v_loss, "approx_kl": approx_kl,
                "clipfrac": clipfrac, "std": std.detach()}
