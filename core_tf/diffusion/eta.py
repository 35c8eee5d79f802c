"""DDIM eta modules (upstream model/diffusion/eta.py), TF side; twin of core_torch/diffusion/eta.py.

Each maps state (B, To, Do) to eta (B, E), E = 1 or Da.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from core_tf.networks.mlp import build_mlp
from core_tf.runtime.module import Module
from shared.diffusion.eta import EtaConfig


class Eta(Module):
    def __init__(self, cfg: EtaConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = cfg
        if cfg.state_dependent:
            self.mlp_res = self.add_child("mlp_res", build_mlp(cfg.mlp()))
        else:
            self.eta_logit = self.add_param("eta_logit", (cfg.out_dim,), keras.initializers.Constant(cfg.logit()))
        self.built = True

    def call(self, state: tf.Tensor) -> tf.Tensor:
        c, B = self.config, tf.shape(state)[0]
        if c.state_dependent:
            eta = tf.tanh(self.mlp_res(tf.reshape(state, [B, c.input_dim]))) + c.base_eta  # (B, E)
            return tf.clip_by_value(eta, (c.min_eta - c.base_eta) + c.base_eta, (c.max_eta - c.base_eta) + c.base_eta)
        eta = 0.5 * (tf.tanh(self.eta_logit) + 1) * (c.max_eta - c.min_eta) + c.min_eta  # (E,)
        if c.kind == "EtaFixed":  # upstream reads it with .item(): a constant, no gradient
            eta = tf.stop_gradient(eta)
        return tf.tile(eta[None, :], [B, 1])
