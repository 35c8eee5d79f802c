"""Gaussian_MLP: observation history -> mean and std of an action chunk (twin of core_torch)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from core_tf.networks.mlp import build_mlp
from core_tf.runtime.module import Module
from shared.param_spec import GaussianMLPConfig


class GaussianMLP(Module):
    def __init__(self, cfg: GaussianMLPConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = cfg
        if cfg.fixed_std is None:
            self.mlp_base = self.add_child("mlp_base", build_mlp(cfg.mlp_base()))
            self.mlp_mean = self.add_child("mlp_mean", build_mlp(cfg.head()))
            self.mlp_logvar = self.add_child("mlp_logvar", build_mlp(cfg.head()))
        else:
            self.mlp_mean = self.add_child("mlp_mean", build_mlp(cfg.mean_only()))
            if cfg.learn_fixed_std:
                init = keras.initializers.Constant(math.log(cfg.fixed_std**2))
                self.logvar = self.add_param("logvar", (cfg.action_dim,), init)
        self.logvar_min = math.log(cfg.std_min**2)
        self.logvar_max = math.log(cfg.std_max**2)
        self.built = True

    @classmethod
    def from_config(cls, cfg: GaussianMLPConfig) -> GaussianMLP:
        return cls(cfg)

    def call(self, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """state (B, To, Do) -> mean, std, each (B, Ta * Da)."""
        c = self.config
        B = tf.shape(state)[0]
        h = tf.reshape(state, [B, c.cond_dim])
        if c.fixed_std is None:
            h = self.mlp_base(h)
        mean = self.mlp_mean(h)
        if c.tanh_output:
            mean = tf.tanh(mean)
        if c.fixed_std is None:
            squashed = tf.tanh(self.mlp_logvar(h))  # (-1, 1) -> [logvar_min, logvar_max]
            logvar = self.logvar_min + 0.5 * (self.logvar_max - self.logvar_min) * (squashed + 1)
            std = tf.exp(0.5 * logvar)
        elif c.learn_fixed_std:
            logvar = tf.clip_by_value(self.logvar, self.logvar_min, self.logvar_max)
            std = tf.tile(tf.tile(tf.exp(0.5 * logvar), [c.horizon_steps])[None, :], [B, 1])
        else:
            std = tf.fill(tf.shape(mean), tf.constant(c.fixed_std, mean.dtype))
        return mean, std
