"""RLPD: SAC with a layer-normed critic ensemble, targets from two members drawn at random, and many critic
steps per env step on half-offline, half-online minibatches (torch side; upstream RLPD_Gaussian and
TrainRLPDAgent's update). Canonical names: network.*, critic_networks.<i>.*, target_networks.<i>.*, log_alpha."""

from __future__ import annotations

import numpy as np
import torch

from core_torch.algorithms.gaussian_offpolicy import GaussianOffPolicyAgent, as_tensors, sample_actions
from core_torch.networks.critic import CriticEnsemble
from shared.settings.rlpd import RLPDSettings


def critic_loss(agent: GaussianOffPolicyAgent, b: dict[str, torch.Tensor], pair: np.ndarray, alpha: float,
                s: RLPDSettings) -> torch.Tensor:
    """mean over members and rows of (Q_k(s, a) - y)^2, y = r + gamma (1 - terminated) min(Q'_i, Q'_j)(s', a')
    (+ gamma (1 - terminated) alpha (-log pi(a'|s')) with backup_entropy); `pair` (2,) the drawn members."""
    m = agent.model
    with torch.no_grad():
        next_a, next_logprob = agent.sample(b["next_obs"], b["next_noise"])
        next_q = m.target_networks.min_of_pair(b["next_obs"], next_a, pair)
        target = b["rewards"] + s.gamma * (1 - b["terminated"]) * next_q  # (B,)
        if s.backup_entropy:
            target = target + s.gamma * (1 - b["terminated"]) * alpha * (-next_logprob)
    q = m.critic_networks(b["obs"], b["actions"])  # (n, B)
    return torch.mean((q - target[None]) ** 2)


def actor_loss(network: torch.nn.Module, critics: CriticEnsemble, obs: torch.Tensor, noise: torch.Tensor,
               alpha: float, randn_clip: float, tanh: bool) -> torch.Tensor:
    """-mean(mean_k Q_k(s, a) - alpha log pi(a|s)), a reparameterised with noise (B, Ta*Da)."""
    a, logprob = sample_actions(network, obs, noise, randn_clip, tanh)
    return -torch.mean(critics(obs, a).mean(0) + alpha * (-logprob))


class RLPDGaussianAgent(GaussianOffPolicyAgent):
    critic_prefixes = ("critic_networks.",)

    def build_critics(self) -> None:
        n = self.settings.n_critics
        self.model.critic_networks = CriticEnsemble(self.critic_config, n)
        self.model.target_networks = CriticEnsemble(self.critic_config, n)

    def update_critic(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One critic step (alpha read now) and the target members' Polyak update. batch: obs, next_obs (B, To, Do),
        actions (B, Ta, Da), rewards, terminated (B,), next_noise (B, Ta*Da), pair (2,) int64."""
        b = as_tensors(batch)
        alpha = self.alpha
        loss = critic_loss(self, b, batch["pair"], alpha, self.settings)
        self.critic_opt.step(loss)
        self.polyak("target_networks.", "critic_networks.")
        return {"critic_loss": float(loss.detach()), "alpha": alpha}

    def update_actor(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One actor step (alpha read now) and one temperature step. batch: obs (B, To, Do), actor_noise and
        temperature_noise (B, Ta*Da)."""
        s, m = self.settings, self.model
        b = as_tensors(batch)
        loss_a = actor_loss(m.network, m.critic_networks, b["obs"], b["actor_noise"], self.alpha,
                            s.randn_clip_value, s.tanh_output)
        self.actor_opt.step(loss_a)
        loss_t = self.step_temperature(b["obs"], b["temperature_noise"])
        return {"actor_loss": float(loss_a.detach()), "temperature_loss": float(loss_t)}
