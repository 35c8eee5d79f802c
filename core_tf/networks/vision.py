"""The image networks of upstream's robomimic *_img configs (twin of core_torch/networks/vision.py):
VisionDiffusionMLP, GaussianVisionMLP (upstream's Gaussian_VisionMLP) and ViTCritic. Each reads the proprioceptive
history `state` (B, To, Do) and the camera frames `rgb` (B, T, 3 num_img, H, W) in [0, 255] (uint8 or float):
the last img_cond_steps frames stacked on channels per camera, optionally shifted (`shifts` drawn by
shared.data.random_shifts.draw_shifts, (num_img, B, 2); only for a config with augment: true), through the
shared ViT backbone and each camera's readout, then the head on [image features, state]."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from core_tf.networks.activations import make_activation
from core_tf.networks.embeddings import SinusoidalPosEmb
from core_tf.networks.layers import Dropout, LayerNorm, Linear, Sequential
from core_tf.networks.mlp import build_mlp
from core_tf.networks.vit import SpatialEmb, VitEncoder, random_shift
from core_tf.runtime.module import Module
from core_tf.runtime.precision import float_dtype
from shared.param_spec.vit import (
    LAYER_NORM_EPS,
    GaussianVisionMLPConfig,
    VisionDiffusionMLPConfig,
    ViTCriticConfig,
)


class _Vision(Module):
    """The backbone and the readouts every image network registers (in upstream's order, after its own)."""

    config: VisionDiffusionMLPConfig | GaussianVisionMLPConfig | ViTCriticConfig

    def _build_vision(self) -> None:
        c = self.config
        self.backbone = self.add_child("backbone", VitEncoder(c.backbone))
        for name in c.compress_names:
            if c.uses_spatial_emb:
                readout: Module = SpatialEmb(c.backbone.num_patch, c.backbone.embed_dim, c.cond_dim, c.spatial_emb,
                                             c.dropout)
            else:
                readout = Sequential([Linear(c.backbone.repr_dim, c.visual_feature_dim),
                                      LayerNorm(c.visual_feature_dim, eps=LAYER_NORM_EPS), Dropout(c.dropout),
                                      make_activation("ReLU")])
            self.add_child(name, readout)

    def features(self, state: tf.Tensor, rgb: tf.Tensor, shifts: np.ndarray | None) -> tf.Tensor:
        """state (B, P) flat, rgb (B, T, 3 num_img, H, W) -> [image features, state] (B, feature_dim + P)."""
        c = self.config
        if shifts is not None and not c.augment:
            raise ValueError("shifts given to a network whose config has augment: false")
        rgb = rgb[:, -c.img_cond_steps:]
        B, T, H, W = tf.shape(rgb)[0], tf.shape(rgb)[1], int(rgb.shape[3]), int(rgb.shape[4])
        cams = tf.reshape(tf.transpose(tf.reshape(rgb, [B, T, c.num_img, 3, H, W]), [0, 2, 1, 3, 4, 5]),
                          [B, c.num_img, T * 3, H, W])
        cams = tf.cast(cams, float_dtype())
        feats = []
        for i, name in enumerate(c.compress_names):
            readout = self.child(name)
            x = cams[:, i]  # (B, 3 T, H, W)
            if shifts is not None:
                x = random_shift(x, np.asarray(shifts)[i])
            patches = self.backbone(x)  # (B, N, E)
            feats.append(readout(patches, state) if c.uses_spatial_emb
                         else readout(tf.reshape(patches, [B, c.backbone.repr_dim])))
        return tf.concat([*feats, state], axis=-1)


class VisionDiffusionMLP(_Vision):
    def __init__(self, cfg: VisionDiffusionMLPConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = cfg
        self._build_vision()
        self.time_embedding = self.add_child("time_embedding", Sequential([
            SinusoidalPosEmb(cfg.time_dim), Linear(cfg.time_dim, cfg.time_dim * 2), make_activation("Mish"),
            Linear(cfg.time_dim * 2, cfg.time_dim)]))
        self.mlp_mean = self.add_child("mlp_mean", build_mlp(cfg.mlp_mean()))

    @classmethod
    def from_config(cls, cfg: VisionDiffusionMLPConfig) -> VisionDiffusionMLP:
        return cls(cfg)

    def call(self, x: tf.Tensor, t: tf.Tensor, state: tf.Tensor, rgb: tf.Tensor,
             shifts: np.ndarray | None = None) -> tf.Tensor:
        """x (B, Ta, Da), t (B,) int, state (B, To, Do), rgb (B, T, C, H, W) -> (B, Ta, Da)."""
        return self.denoise(x, self.time_embedding(tf.reshape(t, [-1])), self.condition(state, rgb, shifts))

    def condition(self, state: tf.Tensor, rgb: tf.Tensor, shifts: np.ndarray | None = None) -> tf.Tensor:
        """-> cond (B, feature_dim + P): the part of the input that is the same at every denoising step."""
        return self.features(tf.reshape(state, [tf.shape(state)[0], self.config.cond_dim]), rgb, shifts)

    def denoise(self, x: tf.Tensor, t_emb: tf.Tensor, cond: tf.Tensor) -> tf.Tensor:
        """x (B, Ta, Da), t_emb (B or 1, time_dim), cond (B, C) -> (B, Ta, Da); upstream's order [x, t, cond]."""
        B = tf.shape(x)[0]
        Ta, Da = self.config.horizon_steps, self.config.action_dim
        t_emb = tf.broadcast_to(t_emb, [B, self.config.time_dim])
        h = tf.concat([tf.reshape(x, [B, Ta * Da]), t_emb, cond], axis=-1)
        return tf.reshape(self.mlp_mean(h), [B, Ta, Da])


class GaussianVisionMLP(_Vision):
    def __init__(self, cfg: GaussianVisionMLPConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = cfg
        if cfg.learn_fixed_std:
            init = keras.initializers.Constant(math.log(cfg.fixed_std**2))
            self.logvar = self.add_param("logvar", (cfg.action_dim,), init)
        self._build_vision()
        self.mlp_mean = self.add_child("mlp_mean", build_mlp(cfg.mlp_mean()))
        if cfg.fixed_std is None:
            self.mlp_logvar = self.add_child("mlp_logvar", build_mlp(cfg.mlp_logvar()))
        self.logvar_min, self.logvar_max = cfg.logvar_bounds
        self.built = True

    @classmethod
    def from_config(cls, cfg: GaussianVisionMLPConfig) -> GaussianVisionMLP:
        return cls(cfg)

    def call(self, state: tf.Tensor, rgb: tf.Tensor, shifts: np.ndarray | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """state (B, To, Do), rgb (B, T, C, H, W) -> mean (tanh-squashed), std, each (B, Ta * Da)."""
        c = self.config
        B = tf.shape(state)[0]
        h = self.features(tf.reshape(state, [B, c.cond_dim]), rgb, shifts)
        mean = tf.tanh(self.mlp_mean(h))
        if c.fixed_std is None:
            std = tf.exp(0.5 * tf.clip_by_value(self.mlp_logvar(h), self.logvar_min, self.logvar_max))
        elif c.learn_fixed_std:
            logvar = tf.clip_by_value(self.logvar, self.logvar_min, self.logvar_max)
            std = tf.tile(tf.tile(tf.exp(0.5 * logvar), [c.horizon_steps])[None, :], [B, 1])
        else:
            std = tf.fill(tf.shape(mean), tf.constant(c.fixed_std, mean.dtype))
        return mean, std


class ViTCritic(_Vision):
    def __init__(self, cfg: ViTCriticConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = cfg
        self.Q1 = self.add_child("Q1", build_mlp(cfg.q1()))
        self._build_vision()

    @classmethod
    def from_config(cls, cfg: ViTCriticConfig) -> ViTCritic:
        return cls(cfg)

    def call(self, state: tf.Tensor, rgb: tf.Tensor, shifts: np.ndarray | None = None) -> tf.Tensor:
        """state (B, To, Do), rgb (B, T, C, H, W) -> V (B, 1)."""
        return self.Q1(self.features(tf.reshape(state, [tf.shape(state)[0], self.config.cond_dim]), rgb, shifts))
