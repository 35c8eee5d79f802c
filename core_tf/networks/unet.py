"""Unet1D: (noisy action chunk, timestep, observation history) -> noise or x0, through a 1-d U-Net over the chunk's
time axis with FiLM conditioning (twin of core_torch/networks/unet.py; layout in shared/param_spec/unet.py).

Inside, tensors are channels-first (B, C, L) as in torch (core_tf/networks/layers.py's Conv1d, ConvTranspose1d and
GroupNorm take them so), so every traced layer output has its torch twin's shape.
Shapes: B batch, Ta horizon (the convolutions' length axis), Da action dim (the input channels), C channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from core_tf.networks.activations import make_activation
from core_tf.networks.embeddings import SinusoidalPosEmb
from core_tf.networks.layers import Conv1d, ConvTranspose1d, GroupNorm, Linear, Sequential
from core_tf.networks.mlp import build_mlp
from core_tf.runtime.module import Module
from shared.param_spec.base import as_tuple
from shared.param_spec.unet import Unet1DConfig


class Conv1dBlock(Module):
    """Conv1d (length kept) -> GroupNorm (with n_groups) -> activation, at upstream's indices 0, 2, 4."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int | None = None,
                 activation_type: str = "Mish", eps: float = 1e-5, **kwargs) -> None:
        super().__init__(**kwargs)
        layers: list[tuple[str, Module]] = [
            ("0", Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2))]
        if n_groups is not None:
            layers.append(("2", GroupNorm(n_groups, out_channels, eps=eps)))
        layers.append(("4", make_activation(activation_type)))
        self.block = self.add_child("block", Sequential(layers))

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """x (B, C_in, L) -> (B, C_out, L)."""
        return self.block(x)


class ResidualBlock1D(Module):
    """Two Conv1dBlocks with FiLM from the global condition between them, plus a (1x1 conv) skip."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, kernel_size: int = 5,
                 n_groups: int | None = None, cond_predict_scale: bool = False, larger_encoder: bool = False,
                 activation_type: str = "Mish", groupnorm_eps: float = 1e-5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.block0 = self.add_child("blocks.0", Conv1dBlock(in_channels, out_channels, kernel_size, n_groups,
                                                             activation_type, groupnorm_eps))
        self.block1 = self.add_child("blocks.1", Conv1dBlock(out_channels, out_channels, kernel_size, n_groups,
                                                             activation_type, groupnorm_eps))
        self.out_channels = out_channels
        self.cond_predict_scale = cond_predict_scale
        film = 2 * out_channels if cond_predict_scale else out_channels
        if larger_encoder:
            encoder = Sequential([Linear(cond_dim, film), make_activation(activation_type), Linear(film, film),
                                  make_activation(activation_type), Linear(film, film)])
        else:
            encoder = Sequential([("0", make_activation(activation_type)), ("1", Linear(cond_dim, film))])
        self.cond_encoder = self.add_child("cond_encoder", encoder)
        self.residual_conv = (self.add_child("residual_conv", Conv1d(in_channels, out_channels, 1))
                              if in_channels != out_channels else None)

    def call(self, x: tf.Tensor, cond: tf.Tensor) -> tf.Tensor:
        """x (B, C_in, L), cond (B, G) -> (B, C_out, L)."""
        out = self.block0(x)
        embed = self.cond_encoder(cond)[:, :, None]  # (B, film, 1)
        if self.cond_predict_scale:  # scale first, then bias (upstream's (B, 2, C, 1) split)
            out = embed[:, : self.out_channels] * out + embed[:, self.out_channels :]
        else:
            out = out + embed
        out = self.block1(out)
        return out + (x if self.residual_conv is None else self.residual_conv(x))


class Downsample1d(Module):
    """Stride-2 Conv1d (kernel 3, padding 1): L -> ceil(L / 2)."""

    def __init__(self, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.conv = self.add_child("conv", Conv1d(dim, dim, 3, 2, 1))

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.conv(x)


class Upsample1d(Module):
    """Stride-2 ConvTranspose1d (kernel 4, padding 1): L -> 2 L."""

    def __init__(self, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.conv = self.add_child("conv", ConvTranspose1d(dim, dim, 4, 2, 1))

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.conv(x)


class Unet1D(Module):
    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        diffusion_step_embed_dim: int = 32,
        dim: int = 32,
        dim_mults: Sequence[int] = (1, 2, 4, 8),
        smaller_encoder: bool = False,
        cond_mlp_dims: Sequence[int] | None = None,
        kernel_size: int = 5,
        n_groups: int | None = None,
        activation_type: str = "Mish",
        cond_predict_scale: bool = False,
        groupnorm_eps: float = 1e-5,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        cfg = Unet1DConfig(action_dim, cond_dim, diffusion_step_embed_dim, dim, as_tuple(dim_mults),
                           smaller_encoder, as_tuple(cond_mlp_dims), kernel_size, n_groups, activation_type,
                           cond_predict_scale, groupnorm_eps)
        self.config = cfg
        dsed = diffusion_step_embed_dim
        self.time_mlp = self.add_child("time_mlp", Sequential([
            SinusoidalPosEmb(dsed), Linear(dsed, 4 * dsed), make_activation("Mish"), Linear(4 * dsed, dsed)]))
        cond = cfg.cond_mlp()
        self.cond_mlp = None if cond is None else self.add_child("cond_mlp", build_mlp(cond))

        def block(name: str, c_in: int, c_out: int) -> ResidualBlock1D:
            return self.add_child(name, ResidualBlock1D(
                c_in, c_out, cfg.global_cond_dim, kernel_size, n_groups, cond_predict_scale, cfg.large_cond_encoder,
                activation_type, groupnorm_eps))

        mid = cfg.widths[-1]
        self.mid = [block(f"mid_modules.{i}", mid, mid) for i in range(2)]
        last = len(cfg.levels) - 1
        self.down = []
        for i, (c_in, c_out) in enumerate(cfg.levels):
            resample = self.add_child(f"down_modules.{i}.2", Downsample1d(c_out) if i < last
                                      else make_activation("Identity"))
            self.down.append((block(f"down_modules.{i}.0", c_in, c_out), block(f"down_modules.{i}.1", c_out, c_out),
                              resample))
        self.up = []
        for i, (c_in, c_out) in enumerate(reversed(cfg.levels[1:])):
            self.up.append((block(f"up_modules.{i}.0", 2 * c_out, c_in), block(f"up_modules.{i}.1", c_in, c_in),
                            self.add_child(f"up_modules.{i}.2", Upsample1d(c_in))))
        self.final_conv = self.add_child("final_conv", Sequential([
            Conv1dBlock(dim, dim, kernel_size, n_groups, activation_type, groupnorm_eps),
            Conv1d(dim, action_dim, 1)]))

    @classmethod
    def from_config(cls, cfg: Unet1DConfig) -> Unet1D:
        return cls(**cfg.__dict__)

    def call(self, x: tf.Tensor, t: tf.Tensor, state: tf.Tensor) -> tf.Tensor:
        """x (B, Ta, Da), t (B,) int, state (B, To, Do) -> (B, Ta, Da)."""
        return self.denoise(x, self.time_embedding(t), self.condition(state))

    def time_embedding(self, t: tf.Tensor) -> tf.Tensor:
        """t (S,) -> (S, dsed)."""
        return self.time_mlp(tf.reshape(t, [-1]))

    def condition(self, state: tf.Tensor) -> tf.Tensor:
        """state (B, To, Do) -> (B, C): the observation part of every FiLM input, the same at every step."""
        cond = tf.reshape(state, [tf.shape(state)[0], self.config.cond_dim])
        return cond if self.cond_mlp is None else self.cond_mlp(cond)

    def denoise(self, x: tf.Tensor, t_emb: tf.Tensor, cond: tf.Tensor) -> tf.Tensor:
        """x (B, Ta, Da), t_emb (B or 1, dsed), cond (B, C) -> (B, Ta, Da); Ta a multiple of horizon_multiple."""
        Ta = x.shape[1]
        if Ta is not None and Ta % self.config.horizon_multiple:
            raise ValueError(f"Unet1D with dim_mults {list(self.config.dim_mults)} needs a horizon that is a "
                             f"multiple of {self.config.horizon_multiple}, got {Ta}")
        B = tf.shape(x)[0]
        g = tf.concat([tf.broadcast_to(t_emb, [B, self.config.diffusion_step_embed_dim]), cond], axis=-1)  # (B, G)
        h = tf.transpose(x, [0, 2, 1])  # (B, Da, Ta): channels first
        skips = []
        for resnet, resnet2, downsample in self.down:
            h = resnet2(resnet(h, g), g)
            skips.append(h)
            h = downsample(h)
        for mid in self.mid:
            h = mid(h, g)
        for resnet, resnet2, upsample in self.up:
            h = tf.concat([h, skips.pop()], axis=1)  # (B, 2 C, L)
            h = upsample(resnet2(resnet(h, g), g))
        return tf.transpose(self.final_conv(h), [0, 2, 1])  # (B, Ta, Da)
