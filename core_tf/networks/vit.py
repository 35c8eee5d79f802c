"""The ViT image encoder (upstream's VitEncoder / MinVit, both patch embeddings), SpatialEmb and the random-shift
crop (twin of core_torch/networks/vit.py): channels-first images as torch takes them, torch's parameter layout,
attention in plain ops. Shapes, checks and the init live in shared/param_spec/vit.py, the shifts in
shared/data/random_shifts.py."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from core_tf.networks.activations import make_activation
from core_tf.networks.layers import Conv2d, Dropout, GroupNorm, LayerNorm, Linear, Sequential
from core_tf.runtime.module import Module
from shared.data.random_shifts import SHIFT_PAD, shift_indices
from shared.param_spec.vit import FF_MULT, GROUP_NORM_EPS, LAYER_NORM_EPS, PIXEL_SCALE, VitEncoderConfig


def _tokens(y: tf.Tensor) -> tf.Tensor:
    """(B, E, h, w) -> (B, h w, E), rows first."""
    shape = tf.shape(y)
    return tf.transpose(tf.reshape(y, [shape[0], shape[1], -1]), [0, 2, 1])


class PatchEmbed1(Module):
    """One 8x8 stride-8 convolution: (B, C, H, W) -> (B, H/8 * W/8, E)."""

    def __init__(self, embed_dim: int, num_channel: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.conv = self.add_child("conv", Conv2d(num_channel, embed_dim, 8, stride=8))

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return _tokens(self.conv(x))


class PatchEmbed2(Module):
    """Conv 8x8 stride 4, [GroupNorm(E, E)], ReLU, conv 3x3 stride 2: (B, C, H, W) -> (B, h w, E)."""

    def __init__(self, embed_dim: int, num_channel: int, use_norm: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        norm = GroupNorm(embed_dim, embed_dim, eps=GROUP_NORM_EPS) if use_norm else make_activation("Identity")
        self.embed = self.add_child("embed", Sequential([
            Conv2d(num_channel, embed_dim, 8, stride=4), norm, make_activation("ReLU"),
            Conv2d(embed_dim, embed_dim, 3, stride=2)]))

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return _tokens(self.embed(x))


class MultiHeadAttention(Module):
    """Self-attention, no mask; qkv_proj's output columns are (q|k|v, head, d) (upstream's rearrange)."""

    def __init__(self, embed_dim: int, num_head: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embed_dim, self.num_head = embed_dim, num_head
        self.qkv_proj = self.add_child("qkv_proj", Linear(embed_dim, 3 * embed_dim))
        self.out_proj = self.add_child("out_proj", Linear(embed_dim, embed_dim))

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """x (B, T, E) -> (B, T, E)."""
        E, h = self.embed_dim, self.num_head
        d = E // h
        B, T = tf.shape(x)[0], tf.shape(x)[1]
        qkv = tf.transpose(tf.reshape(self.qkv_proj(x), [B, T, 3, h, d]), [2, 0, 3, 1, 4])  # (3, B, h, T, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = tf.nn.softmax(tf.matmul(q * (1.0 / math.sqrt(d)), k, transpose_b=True), axis=-1)  # (B, h, T, T)
        return self.out_proj(tf.reshape(tf.transpose(tf.matmul(attn, v), [0, 2, 1, 3]), [B, T, E]))


class TransformerLayer(Module):
    """Pre-norm: x + mha(ln1(x)), then x + linear2(gelu(linear1(ln2(x)))) (exact GELU, upstream's dropout 0)."""

    def __init__(self, embed_dim: int, num_head: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.layer_norm1 = self.add_child("layer_norm1", LayerNorm(embed_dim, eps=LAYER_NORM_EPS))
        self.mha = self.add_child("mha", MultiHeadAttention(embed_dim, num_head))
        self.layer_norm2 = self.add_child("layer_norm2", LayerNorm(embed_dim, eps=LAYER_NORM_EPS))
        self.linear1 = self.add_child("linear1", Linear(embed_dim, FF_MULT * embed_dim))
        self.linear2 = self.add_child("linear2", Linear(FF_MULT * embed_dim, embed_dim))
        self.gelu = make_activation("GELU")  # not a child: torch's twin calls F.gelu, no module to trace

    def call(self, x: tf.Tensor) -> tf.Tensor:
        x = x + self.mha(self.layer_norm1(x))
        return x + self.linear2(self.gelu(self.linear1(self.layer_norm2(x))))


class MinVit(Module):
    """Patch embedding + learned positions, transformer layers, final LayerNorm: (B, C, H, W) -> (B, N, E)."""

    def __init__(self, cfg: VitEncoderConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        v = cfg.cfg
        self.pos_embed = self.add_param("pos_embed", (1, cfg.num_patch, v.embed_dim), keras.initializers.Zeros())
        if v.embed_style == "embed1":
            self.patch_embed = self.add_child("patch_embed", PatchEmbed1(v.embed_dim, cfg.num_channel))
        else:
            self.patch_embed = self.add_child("patch_embed", PatchEmbed2(v.embed_dim, cfg.num_channel,
                                                                         bool(v.embed_norm)))
        self.net = self.add_child("net", Sequential([TransformerLayer(v.embed_dim, v.num_heads)
                                                     for _ in range(v.depth)]))
        self.norm = self.add_child("norm", LayerNorm(v.embed_dim, eps=LAYER_NORM_EPS))
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.norm(self.net(self.patch_embed(x) + self.pos_embed))


class VitEncoder(Module):
    """Pixels in [0, 255] (B, C, H, W) -> patch features (B, N, E), the input mapped to x / 255 - 0.5."""

    def __init__(self, cfg: VitEncoderConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = cfg
        self.vit = self.add_child("vit", MinVit(cfg))

    def call(self, obs: tf.Tensor) -> tf.Tensor:
        return self.vit(obs / PIXEL_SCALE - 0.5)


class SpatialEmb(Module):
    """Per patch-feature channel, a projection of (that channel over the N patches, the proprioception), then
    LayerNorm, ReLU, a learned weighting summed over the E channels: feat (B, N, E), prop (B, P) -> (B, proj)."""

    def __init__(self, num_patch: int, patch_dim: int, prop_dim: int, proj_dim: int, dropout: float,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.weight = self.add_param("weight", (1, patch_dim, proj_dim), keras.initializers.RandomNormal(stddev=1.0))
        self.input_proj = self.add_child("input_proj", Sequential([
            Linear(num_patch + prop_dim, proj_dim), LayerNorm(proj_dim, eps=LAYER_NORM_EPS),
            make_activation("ReLU")]))
        self.dropout = self.add_child("dropout", Dropout(dropout))
        self.built = True

    def call(self, feat: tf.Tensor, prop: tf.Tensor) -> tf.Tensor:
        feat = tf.transpose(feat, [0, 2, 1])  # (B, E, N)
        shape = tf.shape(feat)
        prop = tf.broadcast_to(prop[:, None, :], [shape[0], shape[1], tf.shape(prop)[1]])  # (B, E, P)
        return self.dropout(tf.reduce_sum(self.weight * self.input_proj(tf.concat([feat, prop], axis=-1)), axis=1))


def random_shift(images: tf.Tensor, shifts: np.ndarray, pad: int = SHIFT_PAD) -> tf.Tensor:
    """images (B, C, H, W), shifts (B, 2) drawn by shared.data.random_shifts.draw_shifts -> the shifted batch:
    the replicate-padded images cropped at the shifts (shared/data/random_shifts.py). Eager shifts (numpy)."""
    H, W = int(images.shape[2]), int(images.shape[3])
    rows, cols = shift_indices(np.asarray(shifts), H, W, pad)
    h = tf.transpose(images, [0, 2, 3, 1])  # (B, H, W, C)
    h = tf.gather(h, rows, axis=1, batch_dims=1)  # (B, H, W, C): rows picked per sample
    h = tf.gather(h, cols, axis=2, batch_dims=1)  # (B, H, W, C): then columns
    return tf.transpose(h, [0, 3, 1, 2])
