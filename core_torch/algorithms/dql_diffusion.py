"""DQL (Diffusion Q-Learning): a double-Q critic fitted to TD targets from a Polyak-averaged target
copy, and a diffusion policy trained through its whole sampling chain to maximise Q while staying
close to its own denoising regression (torch side; upstream DQLDiffusion and TrainDQLDiffusionAgent's
minibatch update).

Every random number (minibatch rows, chain noise, diffusion timesteps and training noise, the Q-head
coin flip) comes from numpy (dppo/algorithms/dql.py). Shapes: B rows, Ta horizon, Da action dim, To history, Do obs
dim, S denoising steps. Canonical names: network.* (the policy), critic.* and critic_target.*.
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
from shared.settings.dql import DQLSettings


def differentiable_sample(model: DiffusionModel, state: torch.Tensor, noise: torch.Tensor, min_sampling_std: float,
                          final_action_clip: bool) -> torch.Tensor:
    """The exploration chain (every step's std floored at min_sampling_std) with gradients kept, as upstream's
    forward_train: state (B, To, Do), noise (S+1, B, Ta, Da) (x_T first) -> x_0 (B, Ta, Da). Upstream clamps
    the last step to [-1, 1] whenever final_action_clip_value is truthy (whatever its value)."""
    plan, step_coefs = model._plan_and_steps(False, min_sampling_std)
    c = model.config
    t_embs = model.network.time_embedding(torch.from_numpy(plan.timesteps))  # (S, time_dim)
    cond = model.network.condition(state)  # (B, C)
    z = noise[1:].clamp(-c.randn_clip_value, c.randn_clip_value)  # (S, B, Ta, Da)
    x = noise[0]
    for i, coefs in enumerate(step_coefs):
        x = model.reverse_mean(x, model.network.denoise(x, t_embs[i : i + 1], cond), coefs) + coefs["std"] * z[i]
    return x.clamp(-1.0, 1.0) if final_action_clip else x


def td_targets(critic_target: CriticObsAct, next_obs: torch.Tensor, next_actions: torch.Tensor, rewards: torch.Tensor,
               terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    """r + gamma * min(Q1', Q2')(s', a') * (1 - terminated), (B,), no gradient."""
    with torch.no_grad():
        next_q = torch.min(*critic_target(next_obs, next_actions))
        return rewards + gamma * next_q * (1.0 - terminated)


def critic_loss(critic: CriticObsAct, obs: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Both heads' mean squared TD error, summed: obs (B, To, Do), actions (B, Ta, Da), targets (B,)."""
    q1, q2 = critic(obs, actions)
    return ((q1 - targets) ** 2).mean() + ((q2 - targets) ** 2).mean()


def actor_loss(model: DiffusionModel, critic: CriticObsAct, obs: torch.Tensor, chain_noise: torch.Tensor,
               t: torch.Tensor, noise: torch.Tensor, q1_head: torch.Tensor, s: DQLSettings) -> torch.Tensor:
    """Denoising loss of a chunk sampled with gradients (at timesteps t (B,) with training noise (B, Ta, Da))
    plus eta * q_loss, q_loss = -mean(Q1) / mean|Q2| when q1_head (1: upstream's coin came up > 0.5) else
    -mean(Q2) / mean|Q1|, the normaliser detached."""
    chunk = differentiable_sample(model, obs, chain_noise, s.min_sampling_denoising_std,
                                  s.final_action_clip)[:, : s.act_steps]  # (B, Ta, Da)
    q1, q2 = critic(obs, chunk)
    bc = model.loss(chunk, obs, t, noise)
    if float(q1_head) > 0.5:
        q_loss = -q1.mean() / q2.abs().mean().detach()
    else:
        q_loss = -q2.mean() / q1.abs().mean().detach()
    return bc + s.eta * q_loss


class DQLDiffusionAgent(ScheduledAgent):
    """act / one DQL minibatch update / checkpoint groups on numpy arrays."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsActConfig, settings: DQLSettings,
                 init_params: OrderedDict) -> None:
        self.settings = s = settings
        self.model = DiffusionModel(dc)
        self.model.critic = CriticObsAct(critic)
        self.model.critic_target = CriticObsAct(critic)
        load_state(self.model, init_params)  # dppo/algorithms/agents.py starts critic_target.* as a copy of critic.*
        self.critic, self.critic_target = self.model.critic, self.model.critic_target
        self.critic_target.requires_grad_(False)
        self.init_actor_critic_optimizers(s)

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (S+1, B, Ta, Da) -> {'actions': (B, Ta, Da)}: upstream DQL's forward (every
        step's std floored at min_sampling_denoising_std; deterministic: 1e-3, none at t = 0)."""
        self.model.eval()
        out = self.model.sample(torch.from_numpy(obs), torch.from_numpy(noise), deterministic=deterministic,
                                min_sampling_std=self.settings.min_sampling_denoising_std)
        return {"actions": out.trajectories.numpy()}

    def update(self, batch: dict[str, np.ndarray], step_actor: bool) -> dict[str, float]:
        """One minibatch, as upstream: next chunks a' from the current policy (no gradient), a critic step on the
        TD targets, the actor loss on the updated critic (an actor step, clipped at max_grad_norm, only when
        `step_actor`), then the target critic's Polyak update.

        batch: obs, next_obs (B, To, Do), actions (B, Ta, Da), rewards, terminated (B,), next_noise and
        chain_noise (S+1, B, Ta, Da), t (B,) int64, noise (B, Ta, Da), q1_head () 1 or 0."""
        s = self.settings
        b = {k: torch.from_numpy(np.asarray(v)) for k, v in batch.items()}
        self.model.train()
        next_actions = self.model.sample(b["next_obs"], b["next_noise"], deterministic=False,
                                         min_sampling_std=s.min_sampling_denoising_std).trajectories
        targets = td_targets(self.critic_target, b["next_obs"], next_actions, b["rewards"], b["terminated"], s.gamma)
        loss_c = critic_loss(self.critic, b["obs"], b["actions"], targets)
        self.critic_opt.step(loss_c)
        loss_a = actor_loss(self.model, self.critic, b["obs"], b["chain_noise"], b["t"], b["noise"], b["q1_head"], s)
        if step_actor:
            self.actor_opt.step(loss_a, s.max_grad_norm)
        polyak_update(list(self.critic_target.parameters()), list(self.critic.parameters()), s.target_ema_rate)
        return {"critic_loss": float(loss_c.detach()), "actor_loss": float(loss_a.detach()),
                "target_q": float(targets.mean())}
