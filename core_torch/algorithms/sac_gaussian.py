"""SAC with a tanh-squashed Gaussian actor and a double-Q critic (torch side; upstream SAC_Gaussian and
TrainSACAgent's update). Canonical names: network.*, critic.*, target_critic.*, log_alpha."""

from __future__ import annotations

import numpy as np
import torch

from core_torch.algorithms.gaussian_offpolicy import GaussianOffPolicyAgent, as_tensors, sample_actions
from core_torch.networks.critic import CriticObsAct


def critic_loss(agent: GaussianOffPolicyAgent, b: dict[str, torch.Tensor], alpha: float,
                gamma: float) -> torch.Tensor:
    """Both heads' mean squared error to r + gamma (1 - terminated) (min(Q1', Q2')(s', a') - alpha log pi(a'|s')),
    a' sampled from the actor with b['next_noise'] (B, Ta*Da), no gradient to the target."""
    m = agent.model
    with torch.no_grad():
        next_a, next_logprob = agent.sample(b["next_obs"], b["next_noise"])
        next_q = torch.min(*m.target_critic(b["next_obs"], next_a)) - alpha * next_logprob
        target = b["rewards"] + gamma * next_q * (1 - b["terminated"])
    q1, q2 = m.critic(b["obs"], b["actions"])
    return ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()


def actor_loss(network: torch.nn.Module, critic: CriticObsAct, obs: torch.Tensor, noise: torch.Tensor, alpha: float,
               randn_clip: float, tanh: bool) -> torch.Tensor:
    """mean(-min(Q1, Q2)(s, a) + alpha log pi(a|s)), a reparameterised with noise (B, Ta*Da)."""
    a, logprob = sample_actions(network, obs, noise, randn_clip, tanh)
    return (-torch.min(*critic(obs, a)) + alpha * logprob).mean()


class SACGaussianAgent(GaussianOffPolicyAgent):
    critic_prefixes = ("critic.",)

    def build_critics(self) -> None:
        self.model.critic = CriticObsAct(self.critic_config)
        self.model.target_critic = CriticObsAct(self.critic_config)

    def update(self, batch: dict[str, np.ndarray], actor_repeats: int) -> dict[str, float]:
        """One upstream SAC update: alpha read once; a critic step and the target's Polyak update; then
        `actor_repeats` times (0 when the actor's turn has not come) an actor step and a temperature step, each
        on fresh samples (batch['actor_noise'], batch['temperature_noise']: (R, B, Ta*Da)), the actor loss
        with the alpha read at the start (upstream keeps the number it read).

        batch: obs, next_obs (B, To, Do), actions (B, Ta, Da), rewards, terminated (B,), next_noise (B, Ta*Da)."""
        s, m = self.settings, self.model
        b = as_tensors(batch)
        alpha = self.alpha
        loss_c = critic_loss(self, b, alpha, s.gamma)
        self.critic_opt.step(loss_c)
        self.polyak("target_critic.", "critic.")
        out = {"critic_loss": float(loss_c.detach()), "alpha": alpha}
        for r in range(actor_repeats):
            loss_a = actor_loss(m.network, m.critic, b["obs"], b["actor_noise"][r], alpha, s.randn_clip_value,
                                s.tanh_output)
            self.actor_opt.step(loss_a)
            loss_t = self.step_temperature(b["obs"], b["temperature_noise"][r])
            out.update(actor_loss=float(loss_a.detach()), temperature_loss=float(loss_t))
        return out
