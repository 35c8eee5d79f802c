"""QSM: a diffusion policy fine-tuned by Q-score matching on replayed action chunks, with a double-Q
critic and its Polyak-averaged target (torch side; upstream QSMDiffusion and TrainQSMDiffusionAgent's
minibatch update).

Shapes: B rows, Ta horizon (= executed chunk), Da action dim, To history, Do obs dim, S denoising steps.
The driver (dppo/algorithms/qsm.py) draws every random number (rows, chain noise, timesteps, training noise) in
numpy. Canonical names: network.* (the policy), critic.* and critic_target.* (Q1, Q2 each).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from core_torch.algorithms.scheduled_agent import ScheduledAgent
from core_torch.algorithms.target_network import polyak_update
from core_torch.diffusion.model import DiffusionModel
from core_torch.networks.critic import CriticObsAct
from core_torch.runtime.canonical import load_state
from shared.param_spec import CriticObsActConfig
from shared.settings import DiffusionConfig
from shared.settings.qsm import QSMSettings


def qsm_critic_loss(critic: CriticObsAct, target: CriticObsAct, obs: torch.Tensor, actions: torch.Tensor,
                    next_obs: torch.Tensor, next_actions: torch.Tensor, rewards: torch.Tensor,
                    terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    """sum over heads of mean_b (Q_i(s, a) - y)^2, y = r + gamma * (1 - terminated) * min_i Q'_i(s', a').
    obs, next_obs (B, To, Do); actions, next_actions (B, Ta, Da); rewards, terminated (B,)."""
    with torch.no_grad():
        next_q = torch.stack(target(next_obs, next_actions)).min(dim=0).values  # (B,)
    y = rewards + gamma * next_q * (1.0 - terminated)
    return sum(((q - y) ** 2).mean() for q in critic(obs, actions))


def qsm_actor_loss(model: DiffusionModel, critic: CriticObsAct, obs: torch.Tensor, x0: torch.Tensor,
                   t: torch.Tensor, noise: torch.Tensor, q_grad_coeff: float) -> torch.Tensor:
    """mean (-eps_theta(x_t, t, s) - q_grad_coeff * g)^2 with x_t = q_sample(x0, t, noise) and
    g = mean over heads of dQ_i/da at a = x_t (the noisy chunk, as upstream's code), a constant.
    obs (B, To, Do), x0, noise (B, Ta, Da), t (B,)."""
    x_t = model.q_sample(x0, t, noise)  # (B, Ta, Da)
    a = x_t.detach().requires_grad_(True)
    qs = critic(obs, a)
    grads = [torch.autograd.grad(q.sum(), a, retain_graph=i < len(qs) - 1)[0] for i, q in enumerate(qs)]
    g = torch.stack(grads).mean(dim=0).detach()  # (B, Ta, Da)
    eps = model.network(x_t, t, obs)
    return ((-eps - q_grad_coeff * g) ** 2).mean()


class QSMDiffusionAgent(ScheduledAgent):
    """act / minibatch update / checkpoint groups on numpy arrays for QSM: AdamW for the policy and for
    the critic, each with its cosine schedule stepped once per iteration (as upstream)."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsActConfig, settings: QSMSettings,
                 init_params: OrderedDict) -> None:
        self.settings = s = settings
        self.model = DiffusionModel(dc)
        self.model.critic = CriticObsAct(critic)
        self.model.critic_target = CriticObsAct(critic).requires_grad_(False)
        load_state(self.model, init_params)
        self.critic, self.critic_target = self.model.critic, self.model.critic_target
        self.init_actor_critic_optimizers(s)

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (S+1, B, Ta, Da) -> {'actions': (B, Ta, Da)}: RWR's sampling (std floored at
        min_sampling_denoising_std; deterministic: 1e-3, none at the last step), which QSMDiffusion inherits."""
        return {"actions": self._sample(torch.from_numpy(obs), torch.from_numpy(noise), deterministic).numpy()}

    def _sample(self, obs: torch.Tensor, noise: torch.Tensor, deterministic: bool) -> torch.Tensor:
        self.model.eval()  # no dropout while sampling (the TF twin's sampler has none)
        return self.model.sample(obs, noise, deterministic=deterministic,
                                 min_sampling_std=self.settings.min_sampling_denoising_std).trajectories

    def critic_loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """The TD loss of a minibatch, next chunks sampled by the current policy with b['chain_noise']."""
        next_actions = self._sample(b["next_obs"], b["chain_noise"], deterministic=False)
        return qsm_critic_loss(self.critic, self.critic_target, b["obs"], b["actions"], b["next_obs"], next_actions,
                               b["rewards"], b["terminated"], self.settings.gamma)

    def actor_loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        self.model.train()
        return qsm_actor_loss(self.model, self.critic, b["obs"], b["actions"], b["t"], b["noise"],
                              self.settings.q_grad_coeff)

    def update(self, batch: dict[str, np.ndarray], step_actor: bool) -> dict[str, float]:
        """One minibatch as upstream: a critic AdamW step; the actor loss at the updated critic and, when
        `step_actor` (after the critic's warm-up), an actor AdamW step clipped at max_grad_norm; then the
        target critic's Polyak step. batch: obs, next_obs (B, To, Do), actions (B, Ta, Da), rewards,
        terminated (B,), chain_noise (S+1, B, Ta, Da), t (B,), noise (B, Ta, Da)."""
        b = {k: torch.from_numpy(v) for k, v in batch.items()}
        critic_loss = self.critic_loss(b)
        self.critic_opt.step(critic_loss)
        actor_loss = self.actor_loss(b)
        if step_actor:
            self.actor_opt.step(actor_loss, self.settings.max_grad_norm)
        polyak_update(list(self.critic_target.parameters()), list(self.critic.parameters()), self.settings.critic_tau)
        return {"critic_loss": float(critic_loss.detach()), "actor_loss": float(actor_loss.detach())}
