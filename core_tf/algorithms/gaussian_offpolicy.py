"""What the off-policy fine-tuners of a Gaussian policy (SAC, RLPD, IBRL, Cal-QL) share, TF side (twin of
core_torch/algorithms/gaussian_offpolicy.py): sampling the actor with given noise, the temperature loss, and
the agent base. Each update is one graph-mode tf.function.

Shapes: B rows, Ta horizon, Da action dim, To history, Do obs dim; a chunk is flattened to Ta*Da.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from core_tf.algorithms.ppo_loss import normal_logprob
from core_tf.algorithms.target_network import polyak_update
from core_tf.networks.registry import build_network
from core_tf.runtime.canonical import export_state, load_state
from core_tf.runtime.module import Module
from core_tf.runtime.rng import seed_dropout
from core_tf.runtime.scheduled_optimizer import ScheduledAdamW
from shared.algorithms.ppo_math import GAUSSIAN_EVAL_STD
from shared.param_spec import CriticObsActConfig, GaussianMLPConfig
from shared.settings.gaussian_replay import GaussianReplaySettings, constant_schedule

TANH_LOGPROB_EPS = 1e-6  # upstream: log(1 - tanh(a)^2 + 1e-6)


def sample_actions(network: Module, obs: tf.Tensor, noise: tf.Tensor, randn_clip: float, tanh: bool,
                   deterministic: bool = False, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
    """obs (B, To, Do), noise (B, Ta*Da) -> (actions (B, Ta*Da), log pi (B,)); see the torch twin."""
    mean, std = network(obs, training=training)
    if deterministic:
        std = tf.fill(tf.shape(mean), tf.constant(GAUSSIAN_EVAL_STD, mean.dtype))
    a = mean + std * tf.clip_by_value(noise, -randn_clip, randn_clip)
    logprob = normal_logprob(a, mean, std)  # (B, Ta*Da)
    if tanh:
        a = tf.tanh(a)
        logprob = logprob - tf.math.log(1 - tf.square(a) + TANH_LOGPROB_EPS)
    return a, tf.reduce_sum(logprob, -1)


def temperature_loss(log_alpha: tf.Variable, logprob: tf.Tensor, target_entropy: float) -> tf.Tensor:
    """-mean(alpha * (log pi + target_entropy)), alpha = exp(log_alpha) with gradient, log pi (B,) without."""
    return -tf.reduce_mean(tf.exp(log_alpha) * (tf.stop_gradient(logprob) + target_entropy))


class GaussianOffPolicyModel(Module):
    """network.* (the actor), the critics the algorithm adds, log_alpha where a temperature is learned."""

    def __init__(self, actor: GaussianMLPConfig, log_alpha: float | None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.network = self.add_child("network", build_network(actor))
        if log_alpha is not None:
            self.log_alpha = self.add_param("log_alpha", (), keras.initializers.Constant(log_alpha))
        self.built = True


class GaussianOffPolicyAgent:
    """act / checkpoint groups / schedules on numpy arrays (see the torch twin)."""

    critic_prefixes: tuple[str, ...] = ()
    learns_temperature = True

    def __init__(self, actor: GaussianMLPConfig, critic: CriticObsActConfig, settings: GaussianReplaySettings,
                 init_params: OrderedDict) -> None:
        self.actor_config, self.critic_config = actor, critic
        self.settings = s = settings
        self.model = GaussianOffPolicyModel(actor, math.log(s.init_temperature) if self.learns_temperature else None)
        self.build_critics()
        load_state(self.model, init_params)
        named = list(self.model.named_parameters())
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)  # schedule steps so far
        self.actor_opt = ScheduledAdamW([(n, v) for n, v in named if n.startswith("network.")], s.actor_weight_decay,
                                        s.actor_schedule, s.n_train_itr, self.iterations)
        self.critic_opt = ScheduledAdamW([(n, v) for n, v in named if n.startswith(self.critic_prefixes)],
                                         s.critic_weight_decay, s.critic_schedule, s.n_train_itr, self.iterations)
        self.optimizers = {"actor_optimizer": self.actor_opt, "critic_optimizer": self.critic_opt}
        if self.learns_temperature:
            self.temperature_opt = ScheduledAdamW([("log_alpha", self.model.log_alpha)], 0.0,
                                                  constant_schedule(s.critic_lr), s.n_train_itr, self.iterations)
            self.optimizers["temperature_optimizer"] = self.temperature_opt
        self._polyak_pairs: dict[tuple[str, str], tuple[list, list]] = {}
        self._act = tf.function(self._act_step, reduce_retracing=True)

    def build_critics(self) -> None:
        raise NotImplementedError

    def compile(self, step: Callable[..., Any]) -> Callable[..., Any]:
        """One graph-mode function per update (XLA compiles of these small steps cost more than they save)."""
        return tf.function(step, jit_compile=False, reduce_retracing=True)

    @property
    def alpha(self) -> float:
        return float(tf.exp(self.model.log_alpha))

    def sample(self, obs: tf.Tensor, noise: tf.Tensor, network: Module | None = None,
               deterministic: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        s = self.settings
        return sample_actions(network or self.model.network, obs, noise, s.randn_clip_value, s.tanh_output,
                              deterministic)

    def _act_step(self, obs: tf.Tensor, noise: tf.Tensor, deterministic: bool) -> tf.Tensor:
        return self.sample(obs, noise, deterministic=deterministic)[0]

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (N, To, Do), noise (N, Ta*Da) -> {'actions': (N, Ta, Da)}."""
        s = self.settings
        actions = self._act(tf.constant(obs), tf.constant(noise), bool(deterministic)).numpy()
        return {"actions": actions.reshape(len(obs), s.horizon_steps, s.action_dim)}

    def step_temperature(self, obs: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        """One Adam step of the temperature on log pi of fresh samples (no gradient to the actor)."""
        _, logprob = self.sample(obs, noise)
        with tf.GradientTape() as tape:
            loss = temperature_loss(self.model.log_alpha, logprob, self.settings.target_entropy)
        self.temperature_opt.apply(tape.gradient(loss, self.temperature_opt.variables))
        return loss

    def polyak(self, target: str, source: str) -> None:
        key = (target, source)
        if key not in self._polyak_pairs:
            named = dict(self.model.named_parameters())
            pairs = [(v, named[source + n[len(target):]]) for n, v in named.items() if n.startswith(target)]
            self._polyak_pairs[key] = ([t for t, _ in pairs], [s for _, s in pairs])
        polyak_update(*self._polyak_pairs[key], self.settings.target_ema_rate)

    def learning_rates(self) -> dict[str, float]:
        return {"actor_lr": self.actor_opt.lr, "critic_lr": self.critic_opt.lr}

    def seed_rng(self, seed: int) -> None:
        """Reseed dropout (see the torch twin)."""
        seed_dropout(seed)

    def end_iteration(self) -> None:
        self.iterations.assign_add(1)

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), **{g: opt.state() for g, opt in self.optimizers.items()}}

    def load_groups(self, groups: dict[str, Any], iterations: int) -> None:
        load_state(self.model, groups["model"], "model")
        for group, opt in self.optimizers.items():
            opt.load_state(groups.get(group))
        self.iterations.assign(iterations)


def as_tensors(batch: dict[str, np.ndarray]) -> dict[str, tf.Tensor]:
    return {k: tf.constant(v) for k, v in batch.items()}


def floats(out: dict[str, tf.Tensor]) -> dict[str, float]:
    return {k: float(v) for k, v in out.items()}
