"""DIPO: a diffusion policy fine-tuned by denoising regression on replayed action chunks that a
double-Q critic's action gradient has moved uphill (torch side; upstream DIPODiffusion and
TrainDIPODiffusionAgent's updates).

The replay buffer and every random number live in numpy (shared/algorithms/offpolicy.py, dppo/algorithms/dipo.py); this
class turns minibatches into optimizer steps. Every sample (rollouts and the TD target's next actions)
comes from the target actor, as upstream's forward does. Canonical names: network.* (the trained actor,
as a pre-trained DiffusionModel), actor_target.*, critic.* and critic_target.*.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from core_torch.algorithms.action_gradient import improve_actions
from core_torch.algorithms.scheduled_agent import ScheduledAgent
from core_torch.algorithms.target_network import polyak_update
from core_torch.diffusion.model import DiffusionModel
from core_torch.networks.critic import CriticObsAct
from core_torch.networks.registry import build_network
from core_torch.runtime.canonical import load_state
from shared.param_spec import CriticObsActConfig
from shared.settings import DiffusionConfig
from shared.settings.dipo import DIPOSettings


def td_target(next_q1: torch.Tensor, next_q2: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor,
              gamma: float) -> torch.Tensor:
    """r + gamma * min(Q1', Q2') * (1 - terminated), all (B,)."""
    return rewards + gamma * torch.min(next_q1, next_q2) * (1 - terminated)


def double_q_loss(q1: torch.Tensor, q2: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean (Q1 - y)^2 + mean (Q2 - y)^2, all (B,)."""
    return torch.mean((q1 - target) ** 2) + torch.mean((q2 - target) ** 2)


class DIPODiffusionAgent(ScheduledAgent):
    """act / one DIPO minibatch update / checkpoint groups on numpy arrays."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsActConfig, settings: DIPOSettings,
                 init_params: OrderedDict) -> None:
        self.settings = s = settings
        self.model = DiffusionModel(dc)  # network = the trained actor
        self.model.actor_target = build_network(dc.network)
        self.model.critic = CriticObsAct(critic)
        self.model.critic_target = CriticObsAct(critic)
        load_state(self.model, init_params)
        self.target_policy = DiffusionModel(dc, network=self.model.actor_target)  # upstream's forward
        named = list(self.model.named_parameters())
        self.params = {prefix: [p for n, p in named if n.startswith(prefix + ".")]
                       for prefix in ("network", "actor_target", "critic", "critic_target")}
        for p in self.params["actor_target"] + self.params["critic_target"]:
            p.requires_grad_(False)
        self.init_actor_critic_optimizers(s)

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (S+1, B, Ta, Da) -> {'actions': (B, Ta, Da)}, sampled by the target actor."""
        out = self.target_policy.sample(torch.from_numpy(obs), torch.from_numpy(noise), deterministic=deterministic,
                                        min_sampling_std=self.settings.min_sampling_denoising_std)
        return {"actions": out.trajectories.numpy()}

    def critic_loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """b: obs, next_obs (B, To, Do), actions (B, Ta, Da), rewards, terminated (B,), next_noise
        (S+1, B, Ta, Da): the chain noise of the target actor's next actions (no gradient)."""
        q1, q2 = self.model.critic(b["obs"], b["actions"])
        with torch.no_grad():
            next_actions = self.target_policy.sample(b["next_obs"], b["next_noise"], deterministic=False,
                                                     min_sampling_std=self.settings.min_sampling_denoising_std)
            target = td_target(*self.model.critic_target(b["next_obs"], next_actions.trajectories), b["rewards"],
                               b["terminated"], self.settings.gamma)
        return double_q_loss(q1, q2, target)

    def improve_actions(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        s = self.settings
        return improve_actions(self.model.critic, obs, actions, s.action_lr, s.action_gradient_steps,
                               s.action_grad_norm)

    def actor_loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """b: obs, actions (the improved chunks), t (B,), noise (B, Ta, Da): the plain denoising loss."""
        return self.model.loss(b["actions"], b["obs"], b["t"], b["noise"])

    def update(self, critic_batch: dict[str, np.ndarray], actor_batch: dict[str, np.ndarray] | None
               ) -> tuple[dict[str, float], np.ndarray | None]:
        """One minibatch: a critic AdamW step; with actor_batch (after the warm-up) the action gradient on
        its chunks and an actor AdamW step on the improved ones; then both targets' Polyak updates.
        Returns the losses and the improved chunks (None in warm-up)."""
        s = self.settings
        self.model.train()
        cb = {k: torch.from_numpy(v) for k, v in critic_batch.items()}
        loss = self.critic_loss(cb)
        self.critic_opt.step(loss)
        logs, improved = {"critic_loss": float(loss.detach())}, None
        if actor_batch is not None:
            ab = {k: torch.from_numpy(v) for k, v in actor_batch.items()}
            ab["actions"] = self.improve_actions(ab["obs"], ab["actions"])
            actor_loss = self.actor_loss(ab)
            self.actor_opt.step(actor_loss, s.max_grad_norm)
            logs["actor_loss"] = float(actor_loss.detach())
            improved = ab["actions"].numpy()
        polyak_update(self.params["critic_target"], self.params["critic"], s.target_ema_rate)
        polyak_update(self.params["actor_target"], self.params["network"], s.target_ema_rate)
        return logs, improved
