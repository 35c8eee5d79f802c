"""DiffusionMLP: (noisy action chunk, timestep, observation history) -> noise or x0."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from core_tf.networks.activations import make_activation
from core_tf.networks.embeddings import SinusoidalPosEmb
from core_tf.networks.layers import Linear, Sequential
from core_tf.networks.mlp import MLP, build_mlp
from core_tf.runtime.module import Module
from shared.param_spec import DiffusionMLPConfig, as_tuple


class DiffusionMLP(Module):
    def __init__(
        self,
        action_dim: int,
        horizon_steps: int,
        cond_dim: int,
        time_dim: int = 16,
        mlp_dims: Sequence[int] = (256, 256),
        cond_mlp_dims: Sequence[int] | None = None,
        activation_type: str = "Mish",
        out_activation_type: str = "Identity",
        use_layernorm: bool = False,
        residual_style: bool = False,
        dropout: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        cfg = DiffusionMLPConfig(action_dim, horizon_steps, cond_dim, time_dim, as_tuple(mlp_dims),
                                 as_tuple(cond_mlp_dims), activation_type, out_activation_type,
                                 use_layernorm, residual_style, dropout)
        self.config = cfg
        self.time_embedding = self.add_child("time_embedding", Sequential([
            SinusoidalPosEmb(time_dim),
            Linear(time_dim, time_dim * 2),
            make_activation("Mish"),
            Linear(time_dim * 2, time_dim),
        ]))
        cond = cfg.cond_mlp()
        self.cond_mlp = None if cond is None else self.add_child(
            "cond_mlp", MLP(cond.dim_list, activation_type, "Identity"))
        self.mlp_mean = self.add_child("mlp_mean", build_mlp(cfg.mlp_mean()))

    @classmethod
    def from_config(cls, cfg: DiffusionMLPConfig) -> DiffusionMLP:
        return cls(**cfg.__dict__)

    def call(self, x: tf.Tensor, t: tf.Tensor, state: tf.Tensor) -> tf.Tensor:
        """x (B, Ta, Da), t (B,) int, state (B, To, Do) -> (B, Ta, Da)."""
        return self.denoise(x, self.time_embedding(tf.reshape(t, [-1])), self.condition(state))

    def condition(self, state: tf.Tensor) -> tf.Tensor:
        """state (B, To, Do) -> cond (B, C): the part of the input that is the same at every denoising step."""
        cond = tf.reshape(state, [tf.shape(state)[0], self.config.cond_dim])
        return cond if self.cond_mlp is None else self.cond_mlp(cond)

    def denoise(self, x: tf.Tensor, t_emb: tf.Tensor, cond: tf.Tensor) -> tf.Tensor:
        """x (B, Ta, Da), t_emb (B or 1, time_dim), cond (B, C) -> (B, Ta, Da).

        Samplers embed all their timesteps once per chain and condition once per chain, then call
        this per step, so a step runs only the main MLP (a (1, time_dim) row is broadcast over B).
        """
        B = tf.shape(x)[0]
        Ta, Da = self.config.horizon_steps, self.config.action_dim
        t_emb = tf.broadcast_to(t_emb, [B, self.config.time_dim])
        h = tf.concat([tf.reshape(x, [B, Ta * Da]), t_emb, cond], axis=-1)
        return tf.reshape(self.mlp_mean(h), [B, Ta, Da])
