"""What the off-policy fine-tuners of a Gaussian policy (SAC, RLPD, IBRL, Cal-QL) share, torch side: sampling
the actor with given noise (clamped, optionally tanh-squashed with its log-probability corrected), the
temperature loss, and the agent base (models in canonical names, optimizers, Polyak targets, checkpoint
groups). Upstream's GaussianModel.forward draws its own noise; here every draw comes in as numpy from the
driver (dppo/algorithms/gaussian_replay.py), so both frameworks see the same numbers.

Shapes: B rows, Ta horizon, Da action dim, To history, Do obs dim; a chunk is flattened to Ta*Da.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from core_torch.algorithms.ppo_loss import normal_logprob
from core_torch.algorithms.target_network import polyak_update
from core_torch.networks.registry import build_network
from core_torch.runtime.canonical import export_state, load_state
from core_torch.runtime.rng import seed_dropout
from core_torch.runtime.scheduled_optimizer import ScheduledAdamW
from shared.algorithms.ppo_math import GAUSSIAN_EVAL_STD
from shared.param_spec import CriticObsActConfig, GaussianMLPConfig
from shared.settings.gaussian_replay import GaussianReplaySettings, constant_schedule

TANH_LOGPROB_EPS = 1e-6  # upstream: log(1 - tanh(a)^2 + 1e-6)


def sample_actions(network: nn.Module, obs: torch.Tensor, noise: torch.Tensor, randn_clip: float, tanh: bool,
                   deterministic: bool = False, training: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Upstream GaussianModel.forward with get_logprob: obs (B, To, Do), noise (B, Ta*Da) ->
    (actions (B, Ta*Da), log pi (B,)). a = mean + std * clamp(noise, +-randn_clip) (upstream clamps the sample
    to mean +- randn_clip std: the same point); log pi is the Normal log-density of a, summed over the chunk,
    minus sum log(1 - tanh(a)^2 + 1e-6) when the action is squashed after sampling. deterministic: std 1e-4,
    as upstream's evaluation still samples. Gradients flow to the network through a (reparameterised).
    training: the network's dropout acts (its module mode for this call)."""
    network.train(training)
    mean, std = network(obs)
    network.eval()
    if deterministic:
        std = torch.full_like(mean, GAUSSIAN_EVAL_STD)
    a = mean + std * noise.clamp(-randn_clip, randn_clip)
    logprob = normal_logprob(a, mean, std)  # (B, Ta*Da)
    if tanh:
        a = torch.tanh(a)
        logprob = logprob - torch.log(1 - a.pow(2) + TANH_LOGPROB_EPS)
    return a, logprob.sum(-1)


def temperature_loss(log_alpha: torch.Tensor, logprob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """-mean(alpha * (log pi + target_entropy)), alpha = exp(log_alpha) with gradient, log pi (B,) without."""
    return -torch.mean(log_alpha.exp() * (logprob.detach() + target_entropy))


class GaussianOffPolicyModel(nn.Module):
    """The container whose parameter names are the checkpoint's: network.* (the actor), the critics the
    algorithm adds, and log_alpha where a temperature is learned."""

    def __init__(self, actor: GaussianMLPConfig, log_alpha: float | None) -> None:
        super().__init__()
        self.network = build_network(actor)
        if log_alpha is not None:
            self.log_alpha = nn.Parameter(torch.tensor(log_alpha, dtype=torch.get_default_dtype()))


class GaussianOffPolicyAgent:
    """act / checkpoint groups / schedules on numpy arrays. Subclasses add their critics to `self.model` in
    `build_critics`, name the critic optimizer's parameters in `critic_prefixes` and write `update*`."""

    critic_prefixes: tuple[str, ...] = ()
    learns_temperature = True

    def __init__(self, actor: GaussianMLPConfig, critic: CriticObsActConfig, settings: GaussianReplaySettings,
                 init_params: OrderedDict) -> None:
        self.actor_config, self.critic_config = actor, critic
        self.settings = s = settings
        self._polyak_pairs: dict[tuple[str, str], tuple[list, list]] = {}
        self.model = GaussianOffPolicyModel(actor, math.log(s.init_temperature) if self.learns_temperature else None)
        self.build_critics()
        load_state(self.model, init_params)
        self.model.eval()  # no dropout while acting or in targets; an actor loss that takes it turns it on
        for name, p in self.model.named_parameters():
            if name.startswith(self.frozen_prefixes()):
                p.requires_grad_(False)
        named = list(self.model.named_parameters())
        self.actor_opt = ScheduledAdamW([(n, p) for n, p in named if n.startswith("network.")], s.actor_lr,
                                        s.actor_weight_decay, s.actor_schedule)
        self.critic_opt = ScheduledAdamW([(n, p) for n, p in named if n.startswith(self.critic_prefixes)],
                                         s.critic_lr, s.critic_weight_decay, s.critic_schedule)
        self.optimizers = {"actor_optimizer": self.actor_opt, "critic_optimizer": self.critic_opt}
        if self.learns_temperature:  # upstream: Adam on log_alpha at critic_lr, never scheduled
            self.temperature_opt = ScheduledAdamW([("log_alpha", self.model.log_alpha)], s.critic_lr, 0.0,
                                                  constant_schedule(s.critic_lr))
            self.optimizers["temperature_optimizer"] = self.temperature_opt

    def build_critics(self) -> None:
        raise NotImplementedError

    def frozen_prefixes(self) -> tuple[str, ...]:
        """Parameters no optimizer moves (targets, a frozen policy): kept out of autograd."""
        return tuple(p for p in ("target_critic.", "target_networks.", "target_actor.", "bc_policy.")
                     if any(n.startswith(p) for n, _ in self.model.named_parameters()))

    @property
    def alpha(self) -> float:
        """The current temperature as a number (upstream's log_alpha.exp().item())."""
        return float(self.model.log_alpha.detach().exp())

    def sample(self, obs: torch.Tensor, noise: torch.Tensor, network: nn.Module | None = None,
               deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(actions (B, Ta*Da), log pi (B,)) of `network` (default: the actor) with the model's clip and squash."""
        s = self.settings
        return sample_actions(network or self.model.network, obs, noise, s.randn_clip_value, s.tanh_output,
                              deterministic)

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (N, To, Do), noise (N, Ta*Da) -> {'actions': (N, Ta, Da)}."""
        s = self.settings
        actions, _ = self.sample(torch.from_numpy(obs), torch.from_numpy(noise), deterministic=deterministic)
        return {"actions": actions.reshape(len(obs), s.horizon_steps, s.action_dim).numpy()}

    def step_temperature(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One Adam step of the temperature on log pi of fresh samples (no gradient to the actor)."""
        with torch.no_grad():
            _, logprob = self.sample(obs, noise)
        loss = temperature_loss(self.model.log_alpha, logprob, self.settings.target_entropy)
        self.temperature_opt.step(loss)
        return loss.detach()

    def polyak(self, target: str, source: str) -> None:
        """Every `target`* parameter <- Polyak average with its `source`* twin at target_ema_rate."""
        key = (target, source)
        if key not in self._polyak_pairs:
            named = dict(self.model.named_parameters())
            pairs = [(p, named[source + n[len(target):]]) for n, p in named.items() if n.startswith(target)]
            self._polyak_pairs[key] = ([t for t, _ in pairs], [s for _, s in pairs])
        polyak_update(*self._polyak_pairs[key], self.settings.target_ema_rate)

    def learning_rates(self) -> dict[str, float]:
        return {"actor_lr": self.actor_opt.lr, "critic_lr": self.critic_opt.lr}

    def seed_rng(self, seed: int) -> None:
        """Reseed dropout (shared/framework_seeds.py: once per iteration; only IBRL's actor loss draws masks,
        every other draw comes in as numpy)."""
        seed_dropout(seed)

    def end_iteration(self) -> None:
        for opt in self.optimizers.values():
            opt.end_iteration()

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), **{g: opt.state() for g, opt in self.optimizers.items()}}

    def load_groups(self, groups: dict[str, Any], iterations: int) -> None:
        load_state(self.model, groups["model"], "model")
        for group, opt in self.optimizers.items():
            opt.load_state(groups.get(group), iterations)


def as_tensors(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.asarray(v)) for k, v in batch.items()}
