"""IDQL: implicit diffusion Q-learning (torch side; upstream IDQLDiffusion and TrainIDQLDiffusionAgent's
minibatch update).

A double-Q critic with a Polyak-averaged target copy, a state-value critic fitted to an expectile of
the target Q, and the diffusion policy trained by plain denoising regression on replayed chunks. Acting
scores S candidate chunks per observation with the target Q (shared/algorithms/idql.py picks one). Every random
number comes from numpy (the driver's noise, dppo/algorithms/idql.py's minibatch draws). Canonical names:
network.* (the policy, as a pre-trained DiffusionModel), critic_q.*, critic_q_target.*, critic_v.*.
Shapes: B rows, S candidates, Ta horizon, Da action dim, To history, Do obs dim.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from core_torch.algorithms.scheduled_agent import ScheduledAgent
from core_torch.algorithms.target_network import polyak_update
from core_torch.diffusion.model import DiffusionModel
from core_torch.networks.critic import CriticObs, CriticObsAct
from core_torch.runtime.canonical import load_state
from core_torch.runtime.scheduled_optimizer import ScheduledAdamW
from shared.algorithms.idql import chain_noise, choice_uniforms, choose_candidates
from shared.param_spec import CriticObsActConfig, CriticObsConfig
from shared.settings import DiffusionConfig
from shared.settings.idql import IDQLSettings

OPTIMIZERS = ("actor_optimizer", "critic_q_optimizer", "critic_v_optimizer")


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """Asymmetric square (B,): expectile * diff^2 where diff > 0, else (1 - expectile) * diff^2."""
    weight = torch.where(diff > 0, diff.new_tensor(expectile), diff.new_tensor(1.0 - expectile))
    return weight * diff**2


def value_loss(critic_v: CriticObs, target_q: CriticObsAct, obs: torch.Tensor, actions: torch.Tensor,
               expectile: float) -> torch.Tensor:
    """mean expectile_loss(min(target Q1, Q2)(s, a) - V(s)); the target Q is held fixed."""
    with torch.no_grad():
        q = torch.minimum(*target_q(obs, actions))  # (B,)
    v = critic_v(obs).reshape(-1)  # (B,)
    return expectile_loss(q - v, expectile).mean()


def q_loss(critic_q: CriticObsAct, critic_v: CriticObs, obs: torch.Tensor, next_obs: torch.Tensor,
           actions: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    """sum over both heads of mean (Q_i(s, a) - (r + gamma * (1 - terminated) * V(s')))^2; V held fixed."""
    q1, q2 = critic_q(obs, actions)  # (B,) each
    with torch.no_grad():
        next_v = critic_v(next_obs).reshape(-1)  # (B,)
    target = rewards + gamma * next_v * (1.0 - terminated)
    return ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()


class IDQLDiffusionAgent(ScheduledAgent):
    """act / minibatch update / checkpoint groups on numpy arrays for IDQL."""

    def __init__(self, dc: DiffusionConfig, critic_q: CriticObsActConfig, critic_v: CriticObsConfig,
                 settings: IDQLSettings, init_params: OrderedDict) -> None:
        self.settings = s = settings
        self.model = DiffusionModel(dc)
        self.model.critic_q = CriticObsAct(critic_q)
        self.model.critic_q_target = CriticObsAct(critic_q)
        self.model.critic_v = CriticObs.from_config(critic_v)
        load_state(self.model, init_params)
        m = self.model
        self.critic_q, self.critic_q_target, self.critic_v = m.critic_q, m.critic_q_target, m.critic_v
        named = list(m.named_parameters())
        self.optimizers = {
            "actor_optimizer": ScheduledAdamW([(n, p) for n, p in named if n.startswith("network.")], s.actor_lr,
                                              s.actor_weight_decay, s.actor_schedule),
            "critic_q_optimizer": ScheduledAdamW([(n, p) for n, p in named if n.startswith("critic_q.")],
                                                 s.critic_lr, s.critic_weight_decay, s.critic_schedule),
            "critic_v_optimizer": ScheduledAdamW([(n, p) for n, p in named if n.startswith("critic_v.")],
                                                 s.critic_lr, s.critic_weight_decay, s.critic_schedule)}
        for p in m.critic_q_target.parameters():
            p.requires_grad_(False)

    def learning_rates(self) -> dict[str, float]:
        """The actor's rate and the critics' (critic_q and critic_v follow the same schedule)."""
        return {"actor_lr": self.optimizers["actor_optimizer"].lr,
                "critic_lr": self.optimizers["critic_q_optimizer"].lr}

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (K + 2, S * B, Ta, Da) (shared/algorithms/idql.py) -> {'actions': (B, Ta, Da)}.
        Evaluation (deterministic) with eval_deterministic: deterministic chains and the argmax candidate;
        otherwise noisy chains and, with use_expectile_exploration, the expectile-weighted draw."""
        s, m = self.settings, self.model
        m.eval()
        B, S = obs.shape[0], s.num_sample
        chain_det = bool(deterministic and s.eval_deterministic)
        greedy = chain_det or not s.use_expectile_exploration
        state = torch.from_numpy(obs).repeat(S, 1, 1)  # (S * B, To, Do), candidate-major
        samples = m.sample(state, torch.from_numpy(chain_noise(noise)), deterministic=chain_det,
                           min_sampling_std=s.min_sampling_denoising_std).trajectories  # (S * B, Ta, Da)
        q = torch.minimum(*m.critic_q_target(state, samples)).reshape(S, B).numpy()
        v = None if greedy else m.critic_v(state).reshape(S, B).numpy()
        u = None if greedy else choice_uniforms(noise, B)
        index = choose_candidates(q, v, u, s.critic_hyperparam)  # (B,)
        return {"actions": samples.numpy().reshape(S, B, *samples.shape[1:])[index, np.arange(B)]}

    def update(self, batch: dict[str, np.ndarray], step_actor: bool) -> dict[str, float]:
        """One minibatch {'obs', 'next_obs', 'actions', 'rewards', 'terminated', 't', 'noise'} as upstream: a V
        step, a Q step (with the updated V), the Polyak target update, then the actor's denoising loss, stepped
        (gradients clipped at max_grad_norm) only when `step_actor` (after the critics' warm-up)."""
        m, s, opt = self.model, self.settings, self.optimizers
        m.train()
        b = {k: torch.from_numpy(v) for k, v in batch.items()}
        loss_v = value_loss(m.critic_v, m.critic_q_target, b["obs"], b["actions"], s.expectile)
        opt["critic_v_optimizer"].step(loss_v)
        loss_q = q_loss(m.critic_q, m.critic_v, b["obs"], b["next_obs"], b["actions"], b["rewards"],
                        b["terminated"], s.gamma)
        opt["critic_q_optimizer"].step(loss_q)
        polyak_update(list(m.critic_q_target.parameters()), list(m.critic_q.parameters()), s.critic_tau)
        loss_actor = m.loss(b["actions"], b["obs"], b["t"], b["noise"])
        if step_actor:
            opt["actor_optimizer"].step(loss_actor, s.max_grad_norm)
        return {"critic_v_loss": float(loss_v.detach()), "critic_q_loss": float(loss_q.detach()),
                "actor_loss": float(loss_actor.detach())}
