"""AWR: a diffusion policy fine-tuned by advantage-weighted denoising regression on replayed action
chunks, with a state-value critic fitted to TD(lambda) targets (torch side; upstream AWRDiffusion and
TrainAWRDiffusionAgent's updates).

The replay buffer, the targets, the advantage weights and every random number live in numpy
(shared/algorithms/awr.py, dppo/algorithms/awr.py); this class turns minibatches into AdamW steps. Canonical names:
network.* (the policy, as a pre-trained DiffusionModel) and critic.*.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from core_torch.algorithms.rwr_diffusion import weighted_denoising_loss
from core_torch.algorithms.scheduled_agent import ScheduledAgent
from core_torch.diffusion.model import DiffusionModel
from core_torch.networks.critic import CriticObs
from core_torch.runtime.canonical import load_state
from shared.param_spec import CriticObsConfig
from shared.settings import DiffusionConfig
from shared.settings.awr import AWRSettings


def critic_loss(values: torch.Tensor, targets: torch.Tensor, all_pairs: bool) -> torch.Tensor:
    """values (B, 1), targets (B,). all_pairs: upstream's mean over the B x B broadcast of V_i - target_j;
    else the per-row mean squared error."""
    if all_pairs:
        return ((values - targets) ** 2).mean()
    return ((values[:, 0] - targets) ** 2).mean()


class AWRDiffusionAgent(ScheduledAgent):
    """act / values / critic and actor updates / checkpoint groups on numpy arrays for AWR."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, settings: AWRSettings,
                 init_params: OrderedDict) -> None:
        self.settings = s = settings
        self.model = DiffusionModel(dc)
        self.model.critic = CriticObs.from_config(critic)
        load_state(self.model, init_params)
        self.critic = self.model.critic
        self.init_actor_critic_optimizers(s)

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (S+1, B, Ta, Da) -> {'actions': (B, Ta, Da)}, as RWR samples. No dropout."""
        self.model.eval()
        out = self.model.sample(torch.from_numpy(obs), torch.from_numpy(noise), deterministic=deterministic,
                                min_sampling_std=self.settings.min_sampling_denoising_std)
        return {"actions": out.trajectories.numpy()}

    @torch.no_grad()
    def values(self, obs: np.ndarray) -> np.ndarray:
        """V(s) (B,) of observations (B, To, Do)."""
        return self.critic(torch.from_numpy(obs)).reshape(-1).numpy()

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return critic_loss(self.critic(batch["obs"]), batch["targets"], self.settings.critic_loss_all_pairs)

    def actor_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return weighted_denoising_loss(self.model, batch["actions"], batch["obs"], batch["t"], batch["noise"],
                                       batch["weights"])

    def update_critic(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One AdamW step of the critic on {'obs', 'targets'} (no gradient clipping, as upstream)."""
        self.model.train()
        loss = self.critic_loss({k: torch.from_numpy(v) for k, v in batch.items()})
        self.critic_opt.step(loss)
        return {"critic_loss": float(loss.detach())}

    def update_actor(self, batch: dict[str, np.ndarray], step: bool) -> dict[str, float]:
        """The weighted denoising loss of {'obs', 'actions', 't', 'noise', 'weights'}; an AdamW step (gradients
        clipped at max_grad_norm) only when `step` (after the critic's warm-up)."""
        self.model.train()
        loss = self.actor_loss({k: torch.from_numpy(v) for k, v in batch.items()})
        if step:
            self.actor_opt.step(loss, self.settings.max_grad_norm)
        return {"actor_loss": float(loss.detach())}
