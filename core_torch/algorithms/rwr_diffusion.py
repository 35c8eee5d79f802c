"""RWR: a diffusion policy fine-tuned by reward-weighted behaviour cloning on its own action chunks
(torch side; upstream RWRDiffusion and TrainRWRDiffusionAgent's update).

Shapes: B rows, Ta horizon, Da action dim, To history, Do obs dim. The driver (dppo/algorithms/rwr.py) draws
every random number (sampling noise, timesteps, training noise, minibatch order) in numpy.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
import torch

from core_torch.diffusion.model import DiffusionModel
from core_torch.runtime.canonical import export_state, load_state
from core_torch.runtime.lr_schedule import CosineAnnealingWarmupRestarts
from core_torch.runtime.optim import adamw_state, clip_grad_norm, load_adamw_state, make_adamw
from core_torch.runtime.rng import seed_dropout
from shared.settings import DiffusionConfig
from shared.settings.rwr import RWRSettings


def weighted_denoising_loss(model: DiffusionModel, x0: torch.Tensor, state: torch.Tensor, t: torch.Tensor,
                            noise: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """mean_b( weights_b * mean_{Ta,Da} (prediction - target)^2 ): the epsilon (or x0) regression of each
    row at its timestep, weighted per row.  x0, noise (B, Ta, Da), state (B, To, Do), t, weights (B,)."""
    pred = model.network(model.q_sample(x0, t, noise), t, state)
    target = noise if model.config.predict_epsilon else x0
    per_row = ((pred - target) ** 2).mean(dim=(-2, -1))
    return (per_row * weights).mean()


class RWRDiffusionAgent:
    """act / update / checkpoint groups on numpy arrays for RWR: one AdamW over the policy network,
    its cosine schedule stepped once per iteration (evaluation iterations included, as upstream)."""

    def __init__(self, dc: DiffusionConfig, settings: RWRSettings, init_params: OrderedDict) -> None:
        self.settings = settings
        self.model = DiffusionModel(dc)
        load_state(self.model, init_params)
        self.named = list(self.model.named_parameters())
        self.optimizer = make_adamw([p for _, p in self.named], settings.lr, settings.weight_decay)
        self.scheduler = CosineAnnealingWarmupRestarts(self.optimizer, settings.schedule)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (S+1, B, Ta, Da) -> {'actions': (B, Ta, Da)}: upstream RWR sampling, every
        step's std floored at min_sampling_denoising_std (deterministic: 1e-3, none at t = 0). No dropout."""
        self.model.eval()
        out = self.model.sample(torch.from_numpy(obs), torch.from_numpy(noise), deterministic=deterministic,
                                min_sampling_std=self.settings.min_sampling_denoising_std)
        return {"actions": out.trajectories.numpy()}

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted denoising loss of a minibatch {'obs', 'actions', 't', 'noise', 'weights'}."""
        return weighted_denoising_loss(self.model, batch["actions"], batch["obs"], batch["t"], batch["noise"],
                                       batch["weights"])

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One AdamW step on a minibatch (gradients clipped at max_grad_norm when set)."""
        self.model.train()
        loss = self.loss({k: torch.from_numpy(v) for k, v in batch.items()})
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm([p for _, p in self.named], self.settings.max_grad_norm)
        self.optimizer.step()
        return {"loss": float(loss.detach())}

    def seed_rng(self, seed: int) -> None:
        """Reseed dropout (shared/framework_seeds.py: once per iteration)."""
        seed_dropout(seed)

    def end_iteration(self) -> None:
        with warnings.catch_warnings():
            # evaluation iterations step the schedule without an optimizer step, as upstream does
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            self.scheduler.step()

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "optimizer": adamw_state(self.optimizer, self.named)}

    def load_groups(self, groups: dict[str, OrderedDict], scheduler_steps: int) -> None:
        """Model, optimizer state when the checkpoint has it (else a fresh AdamW), and the schedule's position."""
        load_state(self.model, groups["model"], "model")
        if "optimizer" in groups:
            load_adamw_state(self.optimizer, self.named, groups["optimizer"])
        self.scheduler.last_epoch = scheduler_steps
        for group in self.optimizer.param_groups:
            group["lr"] = self.settings.schedule(scheduler_steps)
