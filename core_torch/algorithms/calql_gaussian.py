"""Cal-QL: SAC whose double-Q critic carries the calibrated conservative regulariser (torch side; upstream
CalQL_Gaussian and TrainCalQLAgent's update). Canonical names: network.*, critic.*, target_critic.*, log_alpha.

Upstream subtracts `0.5 ** (Ta * Da)` from the random actions' Q values as their "log-density" (the density of
the uniform box itself, not its logarithm); kept, since the numbers are upstream's (golden-tested).
"""

from __future__ import annotations

import numpy as np
import torch

from core_torch.algorithms.gaussian_offpolicy import GaussianOffPolicyAgent, as_tensors
from core_torch.algorithms.sac_gaussian import SACGaussianAgent, actor_loss


def critic_loss(agent: GaussianOffPolicyAgent, b: dict[str, torch.Tensor], alpha: float) -> torch.Tensor:
    """TD error of both heads to r + gamma (1 - terminated) Q'_best - alpha log pi(a'_best), a'_best the best
    (by min(Q1', Q2')) of cql_n_actions samples per next state (b['next_noise'] (B*n, Ta*Da), rows of a state
    adjacent), plus cql_min_q_weight times, for each head, mean_b clamp(logsumexp([Q(s, a_rand) - 0.5^(Ta*Da),
    max(Q(s, a_pi) - log pi(a_pi), return-to-go)]) - Q(s, a_data)). a_rand: b['random_actions'] (B, N, Ta, Da);
    a_pi sampled with b['pi_noise'] (B, Ta*Da), no gradient through it."""
    m, s = agent.model, agent.settings
    obs, actions = b["obs"], b["actions"]
    B, n = len(actions), s.cql_n_actions
    q_data = m.critic(obs, actions)
    with torch.no_grad():
        next_obs = b["next_obs"].repeat_interleave(n, dim=0)  # (B*n, To, Do)
        next_a, next_logprob = agent.sample(next_obs, b["next_noise"])
        next_q = torch.min(*m.target_critic(next_obs, next_a)).view(B, n)
        best = torch.argmax(next_q, dim=1)
        rows = torch.arange(B)
        target = b["rewards"] + s.gamma * (1 - b["terminated"]) * next_q[rows, best]
        target = target - alpha * next_logprob.view(B, n)[rows, best]
        pi_a, log_pi = agent.sample(obs, b["pi_noise"])
    td = sum(((q - target) ** 2).mean() for q in q_data)
    random_actions = b["random_actions"]  # (B, N, Ta, Da)
    n_rand = random_actions.shape[1]
    log_rand_pi = 0.5 ** (random_actions.shape[-2] * random_actions.shape[-1])
    q_rand = m.critic(obs.repeat_interleave(n_rand, dim=0), random_actions.reshape(B * n_rand, -1))
    q_pi = m.critic(obs, pi_a)
    penalty = 0.0
    for qd, qr, qp in zip(q_data, q_rand, q_pi, strict=True):
        calibrated = torch.max(qp - log_pi, b["returns"])[:, None]  # (B, 1)
        ood = torch.logsumexp(torch.cat([(qr - log_rand_pi).view(B, n_rand), calibrated], -1), -1)  # (B,)
        penalty = penalty + torch.clamp(ood - qd, s.cql_clip_diff_min, s.cql_clip_diff_max).mean()
    return td + s.cql_min_q_weight * penalty


class CalQLGaussianAgent(SACGaussianAgent):
    """SAC's models and optimizers; the update adds the regulariser and steps the actor every time."""

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One upstream Cal-QL update: alpha read; a critic step and the target's Polyak update; an actor step;
        a temperature step when automatic_entropy_tuning. batch: obs, next_obs (B, To, Do), actions (B, Ta, Da),
        rewards, terminated, returns (B,), next_noise (B*n, Ta*Da), pi_noise, actor_noise, temperature_noise
        (B, Ta*Da), random_actions (B, N, Ta, Da)."""
        s, m = self.settings, self.model
        b = as_tensors(batch)
        alpha = self.alpha
        loss_c = critic_loss(self, b, alpha)
        self.critic_opt.step(loss_c)
        self.polyak("target_critic.", "critic.")
        loss_a = actor_loss(m.network, m.critic, b["obs"], b["actor_noise"], alpha, s.randn_clip_value, s.tanh_output)
        self.actor_opt.step(loss_a)
        out = {"critic_loss": float(loss_c.detach()), "actor_loss": float(loss_a.detach()), "alpha": alpha}
        if s.automatic_entropy_tuning:
            out["temperature_loss"] = float(self.step_temperature(b["obs"], b["temperature_noise"]))
        return out
