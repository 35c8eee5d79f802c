"""GMM_MLP: observation history -> per-mode means, stds and mixture logits of an action chunk (twin of core_torch)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict

import keras
import tensorflow as tf

from core_tf.networks.mlp import build_mlp
from core_tf.runtime.module import Module
from shared.param_spec import as_tuple
from shared.param_spec.gmm_mlp import GMMMLPConfig


class GMMMLP(Module):
    def __init__(
        self,
        action_dim: int,
        horizon_steps: int,
        cond_dim: int,
        mlp_dims: Sequence[int] = (256, 256, 256),
        num_modes: int = 5,
        activation_type: str = "Mish",
        residual_style: bool = False,
        use_layernorm: bool = False,
        fixed_std: float | None = None,
        learn_fixed_std: bool = False,
        std_min: float = 0.01,
        std_max: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        c = self.config = GMMMLPConfig(action_dim, horizon_steps, cond_dim, as_tuple(mlp_dims), num_modes,
                                       activation_type, residual_style, use_layernorm, fixed_std, learn_fixed_std,
                                       std_min, std_max)
        if c.fixed_std is not None and c.learn_fixed_std:
            self.logvar = self.add_param("logvar", (c.action_dim * c.num_modes,),
                                         keras.initializers.Constant(c.logvar_init()))
        self.mlp_mean = self.add_child("mlp_mean", build_mlp(c.mlp(c.output_dim)))
        if c.fixed_std is None:
            self.mlp_logvar = self.add_child("mlp_logvar", build_mlp(c.mlp(c.output_dim)))
        self.mlp_weights = self.add_child("mlp_weights", build_mlp(c.mlp(c.num_modes)))
        self.logvar_min = math.log(c.std_min**2)
        self.logvar_max = math.log(c.std_max**2)
        self.built = True

    @classmethod
    def from_config(cls, cfg: GMMMLPConfig) -> GMMMLP:
        return cls(**asdict(cfg))

    def call(self, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """state (B, To, Do) -> means (B, M, Ta*Da) in (-1, 1), stds (B, M, Ta*Da), logits (B, M)."""
        c = self.config
        B, M = tf.shape(state)[0], c.num_modes
        h = tf.reshape(state, [B, c.cond_dim])  # (B, To*Do)
        means = tf.reshape(tf.tanh(self.mlp_mean(h)), [B, M, c.chunk_dim])
        if c.fixed_std is None:
            logvar = tf.clip_by_value(tf.reshape(self.mlp_logvar(h), [B, M, c.chunk_dim]), self.logvar_min,
                                      self.logvar_max)
            stds = tf.exp(0.5 * logvar)
        elif c.learn_fixed_std:
            logvar = tf.clip_by_value(self.logvar, self.logvar_min, self.logvar_max)  # (M*Da,)
            stds = tf.tile(tf.reshape(tf.exp(0.5 * logvar), [1, M, c.action_dim]), [B, 1, c.horizon_steps])
        else:
            stds = tf.fill(tf.shape(means), tf.constant(c.fixed_std, means.dtype))
        logits = tf.reshape(self.mlp_weights(h), [B, M])
        return means, stds, logits
