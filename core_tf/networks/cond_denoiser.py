"""The reward-guided engine's conditional denoiser: eps_hat(x, p_t, t / T) for contexts x and parameters p.

Three branches of width H, concatenated as [context, parameters, time] and mapped back to p's size:
    time:       Linear(1, Dt) -> Linear(Dt, H), SiLU -> Linear(H, H), SiLU     (names embed_t, tproj.net)
    context:    Linear(Dx, H), SiLU                                            (xproj)
    parameters: Linear(Dp, H), SiLU                                            (pproj)
    core:       Linear(3H, H), SiLU -> Linear(H, H), SiLU -> Linear(H, Dp)      (core)
Parameter names are the engine's own (its CondDenoiser state dict), so one set of weights loads anywhere.
"""

from __future__ import annotations

import tensorflow as tf

from core_tf.networks.activations import make_activation
from core_tf.networks.layers import Linear, Sequential
from core_tf.runtime.module import Module
from shared.param_spec import CondDenoiserConfig


def _dense(fan_in: int, fan_out: int) -> list[Module]:
    return [Linear(fan_in, fan_out), make_activation("SiLU")]


class TimeMLP(Module):
    def __init__(self, time_dim: int, hidden: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.net = self.add_child("net", Sequential([*_dense(time_dim, hidden), *_dense(hidden, hidden)]))

    def call(self, t_emb: tf.Tensor) -> tf.Tensor:
        return self.net(t_emb)


class CondDenoiser(Module):
    def __init__(self, cfg: CondDenoiserConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = cfg
        h = cfg.hidden_dim
        self.tproj = self.add_child("tproj", TimeMLP(cfg.time_dim, h))
        self.embed_t = self.add_child("embed_t", Linear(1, cfg.time_dim))
        self.xproj = self.add_child("xproj", Sequential(_dense(cfg.context_dim, h)))
        self.pproj = self.add_child("pproj", Sequential(_dense(cfg.param_dim, h)))
        self.core = self.add_child("core", Sequential([*_dense(3 * h, h), *_dense(h, h), Linear(h, cfg.param_dim)]))

    def call(self, x: tf.Tensor, p_t: tf.Tensor, t01: tf.Tensor) -> tf.Tensor:
        """x (B, Dx), p_t (B, Dp), t01 (B, 1) = t / T  ->  eps_hat (B, Dp)."""
        h_t = self.tproj(self.embed_t(t01))
        return self.core(tf.concat([self.xproj(x), self.pproj(p_t), h_t], axis=-1))
