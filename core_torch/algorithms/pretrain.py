"""One framework's half of pre-training: model, EMA copy, AdamW, LR scheduler, train step; for a
diffusion policy (PretrainBackend), a Gaussian one (GaussianPretrainBackend, upstream GaussianModel.loss) or a GMM
(GMMPretrainBackend, upstream GMMModel.loss).

The epoch loop, data, logging and checkpoints live in dppo/training/pretrain.py and are shared
by both backends; this class only turns numpy batches into parameter updates.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import torch

from core_torch.algorithms.gmm import GMMModel
from core_torch.algorithms.ppo_loss import normal_entropy, normal_logprob
from core_torch.diffusion.model import DiffusionModel
from core_torch.networks.inputs import cond_inputs, obs_tensors
from core_torch.networks.registry import build_network
from core_torch.runtime.canonical import export_state, load_state
from core_torch.runtime.lr_schedule import CosineAnnealingWarmupRestarts
from core_torch.runtime.optim import adamw_state, clip_grad_norm, load_adamw_state, make_adamw
from core_torch.runtime.rng import seed_dropout
from shared.data import observations as ob
from shared.lr_schedule import CosineWarmupRestarts
from shared.settings import DiffusionConfig, GaussianModelConfig, GMMModelConfig


class PretrainBackend:
    name = "torch"

    def __init__(self, config: DiffusionConfig, init_params: OrderedDict, learning_rate: float, weight_decay: float,
                 schedule: CosineWarmupRestarts, steps_per_epoch: int, max_grad_norm: float | None = None,
                 num_epochs: int = 100000) -> None:
        """Same arguments as the TF twin; torch's scheduler is stepped per epoch, so it needs neither
        steps_per_epoch nor num_epochs (the Keras schedule maps optimizer steps to epochs with them)."""
        self.model = self._build_model(config)
        load_state(self.model, init_params)
        self.ema = copy.deepcopy(self.model)
        self.ema.requires_grad_(False)
        self.named = list(self.model.named_parameters())
        self.optimizer = make_adamw([p for _, p in self.named], learning_rate, weight_decay)
        self.scheduler = CosineAnnealingWarmupRestarts(self.optimizer, schedule)
        self.max_grad_norm = max_grad_norm
        self.model.train()

    def _build_model(self, config: DiffusionConfig) -> torch.nn.Module:
        return DiffusionModel(config)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def step_metrics(self) -> dict[str, float]:
        """Numbers of the last train step besides its loss (none for diffusion)."""
        return {}

    def train_step(self, actions: np.ndarray, states: ob.Obs, t: np.ndarray, noise: np.ndarray) -> float:
        """One AdamW step on a batch: actions (B, Ta, Da), states (B, To, Do) (or a camera observation's dict),
        t (B,), noise like actions."""
        loss = self.model.loss(torch.from_numpy(actions), obs_tensors(states), torch.from_numpy(t),
                               torch.from_numpy(noise))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm([p for _, p in self.named], self.max_grad_norm)
        self.optimizer.step()
        return float(loss.detach())

    def seed_rng(self, seed: int) -> None:
        """Reseed dropout (shared/framework_seeds.py: once per epoch)."""
        seed_dropout(seed)

    def end_epoch(self) -> None:
        self.scheduler.step()

    @torch.no_grad()
    def ema_reset(self) -> None:
        self.ema.load_state_dict(self.model.state_dict())

    @torch.no_grad()
    def ema_update(self, decay: float) -> None:
        """ema = decay * ema + (1 - decay) * model."""
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.mul_(decay).add_(p, alpha=1.0 - decay)

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "ema": export_state(self.ema),
                "optimizer": adamw_state(self.optimizer, self.named)}

    def load_groups(self, groups: dict[str, OrderedDict], epochs_done: int) -> None:
        """Model, EMA and (when the checkpoint has it) optimizer state; without it the optimizer starts
        fresh and the learning rate continues from epoch `epochs_done` of the schedule."""
        load_state(self.model, groups["model"], "model")
        load_state(self.ema, groups["ema"], "ema")
        if "optimizer" in groups:
            load_adamw_state(self.optimizer, self.named, groups["optimizer"])
        self.scheduler.last_epoch = epochs_done
        for group in self.optimizer.param_groups:
            group["lr"] = self.scheduler.schedule(epochs_done)


class GaussianModel(torch.nn.Module):
    """Upstream GaussianModel's training half: the network under `network.` and its loss."""

    def __init__(self, config: GaussianModelConfig) -> None:
        super().__init__()
        self.network = build_network(config.network)

    def loss(self, actions: torch.Tensor, states: torch.Tensor, ent_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, mean entropy) of actions (B, Ta, Da) given states (B, To, Do): minus the Normal log-density of the
        flattened chunk averaged over batch and dimensions (B, Ta * Da), minus ent_coef times the mean entropy."""
        mean, std = self.network(*cond_inputs(states))
        logprob = normal_logprob(actions.reshape(mean.shape), mean, std)  # (B, Ta * Da)
        entropy = normal_entropy(std).mean()
        return -logprob.mean() - ent_coef * entropy, entropy


class GaussianPretrainBackend(PretrainBackend):
    """Pre-training of a Gaussian policy: same optimizer, schedule and EMA as PretrainBackend; a batch needs
    no timesteps or noise."""

    def __init__(self, config: GaussianModelConfig, init_params: OrderedDict, learning_rate: float,
                 weight_decay: float, schedule: CosineWarmupRestarts, steps_per_epoch: int,
                 max_grad_norm: float | None = None, num_epochs: int = 100000, ent_coef: float = 0.0) -> None:
        super().__init__(config, init_params, learning_rate, weight_decay, schedule, steps_per_epoch, max_grad_norm,
                         num_epochs)
        self.ent_coef = ent_coef
        self._entropy = float("nan")

    def _build_model(self, config: GaussianModelConfig) -> torch.nn.Module:
        return GaussianModel(config)

    def step_metrics(self) -> dict[str, float]:
        return {"entropy": self._entropy}

    def _loss(self, actions: torch.Tensor, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, entropy) of a batch."""
        return self.model.loss(actions, states, self.ent_coef)

    def train_step(self, actions: np.ndarray, states: ob.Obs) -> float:  # type: ignore[override]
        """One AdamW step on a batch: actions (B, Ta, Da), states (B, To, Do) (or a camera observation's dict)."""
        loss, entropy = self._loss(torch.from_numpy(actions), obs_tensors(states))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm([p for _, p in self.named], self.max_grad_norm)
        self.optimizer.step()
        self._entropy = float(entropy.detach())
        return float(loss.detach())


class GMMPretrainBackend(GaussianPretrainBackend):
    """Pre-training of a GMM policy (upstream GMMModel under TrainGaussianAgent): the same steps on the mixture's
    negative log-likelihood, which takes no entropy bonus (ent_coef stays 0)."""

    def _build_model(self, config: GMMModelConfig) -> torch.nn.Module:
        return GMMModel(build_network(config.network))

    def _loss(self, actions: torch.Tensor, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.loss(actions, states)
