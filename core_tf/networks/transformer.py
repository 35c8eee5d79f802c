"""Gaussian_Transformer and GMM_Transformer (upstream's model/common/transformer.py) and the Transformer they
share (twin of core_torch/networks/transformer.py): attention written in plain ops with torch's parameter
layout (Keras' MultiHeadAttention keeps per-head kernels; upstream's in_proj_weight is one (3E, E) matrix).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from core_tf.networks.activations import make_activation
from core_tf.networks.layers import Dropout, LayerNorm, Linear, Sequential
from core_tf.runtime.module import Module
from shared.param_spec.transformer import (
    FF_MULT,
    INIT_STD,
    LAYER_NORM_EPS,
    GaussianTransformerConfig,
    GMMTransformerConfig,
)

_ACTIVATION = {"gelu": "GELU", "relu": "ReLU"}


def _linear(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    """x (..., in) W^T + b, W (out, in)."""
    return tf.matmul(x, weight, transpose_b=True) + bias


class MultiheadAttention(Module):
    """Batch-first multi-head attention without masks; in_proj_weight (3E, E) stacks W_q, W_k, W_v."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.in_proj_weight = self.add_param("in_proj_weight", (3 * embed_dim, embed_dim),
                                             keras.initializers.RandomNormal(stddev=INIT_STD))
        self.in_proj_bias = self.add_param("in_proj_bias", (3 * embed_dim,), keras.initializers.Zeros())
        self.out_proj = self.add_child("out_proj", Linear(embed_dim, embed_dim))
        self.dropout = self.add_child("dropout", Dropout(dropout))  # on the attention weights
        self.built = True

    def call(self, query: tf.Tensor, memory: tf.Tensor) -> tf.Tensor:
        """query (B, L, E) attends to memory (B, S, E) -> (B, L, E)."""
        E, h = self.embed_dim, self.num_heads
        d = E // h
        B, L, S = tf.shape(query)[0], tf.shape(query)[1], tf.shape(memory)[1]
        q = _linear(query, self.in_proj_weight[:E], self.in_proj_bias[:E])  # (B, L, E)
        k, v = tf.split(_linear(memory, self.in_proj_weight[E:], self.in_proj_bias[E:]), 2, axis=-1)  # (B, S, E)
        q = tf.transpose(tf.reshape(q, [B, L, h, d]), [0, 2, 1, 3]) * (1.0 / math.sqrt(d))  # (B, h, L, d)
        k = tf.transpose(tf.reshape(k, [B, S, h, d]), [0, 2, 1, 3])  # (B, h, S, d)
        v = tf.transpose(tf.reshape(v, [B, S, h, d]), [0, 2, 1, 3])
        attn = self.dropout(tf.nn.softmax(tf.matmul(q, k, transpose_b=True), axis=-1))  # (B, h, L, S)
        out = tf.reshape(tf.transpose(tf.matmul(attn, v), [0, 2, 1, 3]), [B, L, E])
        return self.out_proj(out)


class TransformerDecoderLayer(Module):
    """Pre-norm (norm_first) decoder layer: self-attention, attention to memory, feed-forward, each residual."""

    def __init__(self, d_model: int, nhead: int, dropout: float, activation: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.self_attn = self.add_child("self_attn", MultiheadAttention(d_model, nhead, dropout))
        self.multihead_attn = self.add_child("multihead_attn", MultiheadAttention(d_model, nhead, dropout))
        self.linear1 = self.add_child("linear1", Linear(d_model, FF_MULT * d_model))
        self.dropout = self.add_child("dropout", Dropout(dropout))
        self.linear2 = self.add_child("linear2", Linear(FF_MULT * d_model, d_model))
        self.norm1 = self.add_child("norm1", LayerNorm(d_model, eps=LAYER_NORM_EPS))
        self.norm2 = self.add_child("norm2", LayerNorm(d_model, eps=LAYER_NORM_EPS))
        self.norm3 = self.add_child("norm3", LayerNorm(d_model, eps=LAYER_NORM_EPS))
        self.dropout1 = self.add_child("dropout1", Dropout(dropout))
        self.dropout2 = self.add_child("dropout2", Dropout(dropout))
        self.dropout3 = self.add_child("dropout3", Dropout(dropout))
        self.activation = self.add_child("activation", make_activation(_ACTIVATION[activation]))

    def call(self, x: tf.Tensor, memory: tf.Tensor) -> tf.Tensor:
        """x (B, T, E), memory (B, S, E) -> (B, T, E)."""
        h = self.norm1(x)
        x = x + self.dropout1(self.self_attn(h, h))
        x = x + self.dropout2(self.multihead_attn(self.norm2(x), memory))
        ff = self.linear2(self.dropout(self.activation(self.linear1(self.norm3(x)))))
        return x + self.dropout3(ff)


class TransformerDecoder(Module):
    def __init__(self, num_layers: int, d_model: int, nhead: int, dropout: float, activation: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_layers = num_layers
        for i in range(num_layers):
            self.add_child(f"layers.{i}", TransformerDecoderLayer(d_model, nhead, dropout, activation))

    def call(self, x: tf.Tensor, memory: tf.Tensor) -> tf.Tensor:
        for i in range(self.num_layers):
            x = self.child(f"layers.{i}")(x, memory)
        return x


class Transformer(Module):
    """Upstream's Transformer with one observation token. call returns the features before the head
    (ln_f's output, what GMM_Transformer's modes_head reads); the policies apply `head` themselves."""

    def __init__(self, output_dim: int, horizon: int, cond_dim: int, n_layer: int, n_head: int, n_emb: int,
                 p_drop_emb: float, p_drop_attn: float, activation: str, **kwargs) -> None:
        super().__init__(**kwargs)
        normal = keras.initializers.RandomNormal(stddev=INIT_STD)
        self.cond_pos_emb = self.add_param("cond_pos_emb", (1, 1, n_emb), normal)
        self.pos_emb = self.add_param("pos_emb", (1, horizon, n_emb), normal)
        self.cond_obs_emb = self.add_child("cond_obs_emb", Linear(cond_dim, n_emb))
        self.encoder = self.add_child("encoder", Sequential([Linear(n_emb, FF_MULT * n_emb), make_activation("Mish"),
                                                             Linear(FF_MULT * n_emb, n_emb)]))
        self.drop = self.add_child("drop", Dropout(p_drop_emb))
        self.decoder = self.add_child("decoder", TransformerDecoder(n_layer, n_emb, n_head, p_drop_attn, activation))
        self.ln_f = self.add_child("ln_f", LayerNorm(n_emb, eps=LAYER_NORM_EPS))
        self.head = self.add_child("head", Linear(n_emb, output_dim))
        self.horizon, self.n_emb = horizon, n_emb
        self.built = True

    def call(self, cond: tf.Tensor) -> tf.Tensor:
        """cond (B, 1, cond_dim) -> pre-head features (B, H, E)."""
        memory = self.encoder(self.drop(self.cond_obs_emb(cond) + self.cond_pos_emb))  # (B, 1, E)
        x = self.drop(tf.broadcast_to(self.pos_emb, [tf.shape(cond)[0], self.horizon, self.n_emb]))  # (B, H, E)
        return self.ln_f(self.decoder(x, memory))


def _transformer(cfg: GaussianTransformerConfig | GMMTransformerConfig) -> Transformer:
    return Transformer(cfg.head_dim, cfg.horizon_steps, cfg.cond_dim, cfg.transformer_num_layers,
                       cfg.transformer_num_heads, cfg.transformer_embed_dim, cfg.p_drop_emb, cfg.p_drop_attn,
                       cfg.transformer_activation)


class GaussianTransformer(Module):
    def __init__(
        self,
        action_dim: int,
        horizon_steps: int,
        cond_dim: int,
        transformer_embed_dim: int = 256,
        transformer_num_heads: int = 8,
        transformer_num_layers: int = 6,
        transformer_activation: str = "gelu",
        p_drop_emb: float = 0.0,
        p_drop_attn: float = 0.0,
        fixed_std: float | None = None,
        learn_fixed_std: bool = False,
        std_min: float = 0.01,
        std_max: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        cfg = GaussianTransformerConfig(action_dim, horizon_steps, cond_dim, transformer_embed_dim,
                                        transformer_num_heads, transformer_num_layers, transformer_activation,
                                        p_drop_emb, p_drop_attn, fixed_std, learn_fixed_std, std_min, std_max)
        self.config = cfg
        if cfg.learn_fixed_std:
            self.logvar = self.add_param("logvar", (action_dim,),
                                         keras.initializers.Constant(math.log(fixed_std**2)))
        self.transformer = self.add_child("transformer", _transformer(cfg))
        self.logvar_min = math.log(std_min**2)
        self.logvar_max = math.log(std_max**2)
        self.built = True

    @classmethod
    def from_config(cls, cfg: GaussianTransformerConfig) -> GaussianTransformer:
        return cls(**cfg.__dict__)

    def call(self, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """state (B, To, Do) -> mean, std, each (B, Ta * Da)."""
        c = self.config
        B, Da = tf.shape(state)[0], c.action_dim
        out = self.transformer.head(self.transformer(tf.reshape(state, [B, 1, c.cond_dim])))  # (B, Ta, head_dim)
        mean = tf.reshape(tf.tanh(out[:, :, :Da]), [B, c.output_dim])
        if c.learn_fixed_std:
            std = tf.exp(0.5 * tf.clip_by_value(self.logvar, self.logvar_min, self.logvar_max))  # (Da,)
            std = tf.tile(tf.tile(std, [c.horizon_steps])[None, :], [B, 1])
        elif c.fixed_std is not None:
            std = tf.fill(tf.shape(mean), tf.constant(c.fixed_std, mean.dtype))
        else:
            logvar = tf.clip_by_value(tf.reshape(out[:, :, Da:], [B, c.output_dim]), self.logvar_min, self.logvar_max)
            std = tf.exp(0.5 * logvar)
        return mean, std


class GMMTransformer(Module):
    def __init__(
        self,
        action_dim: int,
        horizon_steps: int,
        cond_dim: int,
        num_modes: int = 5,
        transformer_embed_dim: int = 256,
        transformer_num_heads: int = 8,
        transformer_num_layers: int = 6,
        transformer_activation: str = "gelu",
        p_drop_emb: float = 0.0,
        p_drop_attn: float = 0.0,
        fixed_std: float | None = None,
        learn_fixed_std: bool = False,
        std_min: float = 0.01,
        std_max: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        cfg = GMMTransformerConfig(action_dim, horizon_steps, cond_dim, num_modes, transformer_embed_dim,
                                   transformer_num_heads, transformer_num_layers, transformer_activation,
                                   p_drop_emb, p_drop_attn, fixed_std, learn_fixed_std, std_min, std_max)
        self.config = cfg
        if cfg.learn_fixed_std:
            self.logvar = self.add_param("logvar", (num_modes * action_dim,),
                                         keras.initializers.Constant(math.log(fixed_std**2)))
        self.transformer = self.add_child("transformer", _transformer(cfg))
        self.modes_head = self.add_child("modes_head", Linear(horizon_steps * transformer_embed_dim, num_modes))
        self.logvar_min = math.log(std_min**2)
        self.logvar_max = math.log(std_max**2)
        self.built = True

    @classmethod
    def from_config(cls, cfg: GMMTransformerConfig) -> GMMTransformer:
        return cls(**cfg.__dict__)

    def call(self, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """state (B, To, Do) -> means (B, M, Ta * Da), scales (B, M, Ta * Da), mode logits (B, M)."""
        c = self.config
        B, M, Ta, Da = tf.shape(state)[0], c.num_modes, c.horizon_steps, c.action_dim
        features = self.transformer(tf.reshape(state, [B, 1, c.cond_dim]))  # (B, Ta, E)
        out = self.transformer.head(features)  # (B, Ta, M * Da)
        mean = tf.reshape(tf.transpose(tf.reshape(tf.tanh(out), [B, Ta, M, Da]), [0, 2, 1, 3]), [B, M, Ta * Da])
        if c.learn_fixed_std:
            std = tf.exp(0.5 * tf.clip_by_value(self.logvar, self.logvar_min, self.logvar_max))  # (M * Da,)
            std = tf.reshape(tf.broadcast_to(tf.reshape(std, [1, M, 1, Da]), [B, M, Ta, Da]), [B, M, Ta * Da])
        else:
            std = tf.fill(tf.shape(mean), tf.constant(c.fixed_std, mean.dtype))
        logits = self.modes_head(tf.reshape(features, [B, Ta * c.transformer_embed_dim]))  # (B, M)
        return mean, std, logits
