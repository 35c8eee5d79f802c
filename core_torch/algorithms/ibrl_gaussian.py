"""IBRL: a frozen pre-trained policy proposes beside the RL actor and Q picks (torch side; upstream
IBRL_Gaussian and TrainIBRLAgent's update). Canonical names: network.* (the RL actor), target_actor.*,
bc_policy.* (frozen), critic_networks.<i>.*, target_networks.<i>.*.

Upstream builds its ensemble's trained weights with torch.func.stack_module_state, which copies them: its
optimizer trains the copies while `critic_networks` keep their initial weights, and its acting (forward)
compares the two proposals with those never-trained members. Here the trained members pick, as the method
intends; the losses are upstream's (golden-tested).
"""

from __future__ import annotations

import numpy as np
import torch

from core_torch.algorithms.gaussian_offpolicy import GaussianOffPolicyAgent, as_tensors, sample_actions
from core_torch.networks.critic import CriticEnsemble
from core_torch.networks.registry import build_network
from shared.algorithms.gaussian_replay import split_ibrl_step_noise


def critic_loss(agent: GaussianOffPolicyAgent, b: dict[str, torch.Tensor], pair: np.ndarray,
                gamma: float) -> torch.Tensor:
    """mean over members and rows of (Q_k(s, a) - y)^2, y = r + gamma (1 - terminated) max(Q'(s', a'_bc),
    Q'(s', a'_rl)), each Q' the minimum of the drawn target members `pair`, a'_bc the frozen policy's
    deterministic proposal (std 1e-4, b['bc_noise']), a'_rl the target actor's sample (b['next_noise'])."""
    m, s = agent.model, agent.settings
    with torch.no_grad():
        bc, _ = sample_actions(m.bc_policy, b["next_obs"], b["bc_noise"], s.randn_clip_value, False, True)
        rl, _ = sample_actions(m.target_actor, b["next_obs"], b["next_noise"], s.randn_clip_value, False)
        q_bc = m.target_networks.min_of_pair(b["next_obs"], bc, pair)
        q_rl = m.target_networks.min_of_pair(b["next_obs"], rl, pair)
        next_q = torch.where(q_bc > q_rl, q_bc, q_rl)
        target = b["rewards"] + gamma * (1 - b["terminated"]) * next_q
    q = m.critic_networks(b["obs"], b["actions"])  # (n, B)
    return torch.mean((q - target[None]) ** 2)


def actor_loss(network: torch.nn.Module, critics: CriticEnsemble, obs: torch.Tensor, noise: torch.Tensor,
               randn_clip: float) -> torch.Tensor:
    """-mean(min_k Q_k(s, a)), a reparameterised with noise (B, Ta*Da), no squashing, no entropy term; the actor's
    dropout (robomimic's configs) acts here, as in upstream's training mode."""
    a, _ = sample_actions(network, obs, noise, randn_clip, False, training=True)
    return -torch.mean(critics(obs, a).min(0).values)


def pick_proposals(q_bc: torch.Tensor, q_rl: torch.Tensor, uniform: torch.Tensor, soft: bool,
                   beta: float) -> torch.Tensor:
    """(B,) True where the pre-trained policy's proposal is executed: greedily where Q_bc > Q_rl, or (soft)
    with probability softmax([exp(beta Q_bc), exp(beta Q_rl)])[0] (upstream's weights: a softmax of the
    exponentials), decided by uniform (B,) in [0, 1)."""
    if not soft:
        return q_bc > q_rl
    w = torch.softmax(torch.stack([torch.exp(q_bc * beta), torch.exp(q_rl * beta)], -1), -1)  # (B, 2)
    return uniform < w[:, 0]


class IBRLGaussianAgent(GaussianOffPolicyAgent):
    critic_prefixes = ("critic_networks.",)
    learns_temperature = False

    def build_critics(self) -> None:
        n = self.settings.n_critics
        self.model.target_actor = build_network(self.actor_config)
        self.model.bc_policy = build_network(self.actor_config)
        self.model.critic_networks = CriticEnsemble(self.critic_config, n)
        self.model.target_networks = CriticEnsemble(self.critic_config, n)

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (N, To, Do), noise: shared/algorithms/gaussian_replay.py's IBRL step noise -> {'actions': (N, Ta, Da),
        'from_bc': (N,)}: both proposals, each scored by the minimum of two drawn members, one executed."""
        s, m = self.settings, self.model
        n = len(obs)
        d = split_ibrl_step_noise(noise, n, s.chunk, s.n_critics)
        o = torch.from_numpy(obs)
        bc, _ = sample_actions(m.bc_policy, o, torch.from_numpy(d["bc"]), s.randn_clip_value, False, True)
        rl, _ = sample_actions(m.network, o, torch.from_numpy(d["rl"]), s.randn_clip_value, False, deterministic)
        q_bc = m.critic_networks.min_of_pair(o, bc, d["pair"])
        q_rl = m.critic_networks.min_of_pair(o, rl, d["pair"])
        from_bc = pick_proposals(q_bc, q_rl, torch.from_numpy(d["uniform"]),
                                 s.soft_action_sample and not deterministic, s.soft_action_sample_beta)
        actions = torch.where(from_bc[:, None], bc, rl)
        return {"actions": actions.reshape(n, s.horizon_steps, s.action_dim).numpy(), "from_bc": from_bc.numpy()}

    def update_critic(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One critic step and the target members' Polyak update. batch: obs, next_obs, actions, rewards,
        terminated, bc_noise and next_noise (B, Ta*Da), pair (2,)."""
        loss = critic_loss(self, as_tensors(batch), batch["pair"], self.settings.gamma)
        self.critic_opt.step(loss)
        self.polyak("target_networks.", "critic_networks.")
        return {"critic_loss": float(loss.detach())}

    def update_actor(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One actor step, then the target actor's Polyak update. batch: obs (B, To, Do), actor_noise (B, Ta*Da)."""
        s, m = self.settings, self.model
        b = as_tensors(batch)
        loss = actor_loss(m.network, m.critic_networks, b["obs"], b["actor_noise"], s.randn_clip_value)
        self.actor_opt.step(loss)
        self.polyak("target_actor.", "network.")
        return {"actor_loss": float(loss.detach())}
