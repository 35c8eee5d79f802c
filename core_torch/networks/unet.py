"""Unet1D: (noisy action chunk, timestep, observation history) -> noise or x0, through a 1-d U-Net over the chunk's
time axis with FiLM conditioning (upstream model/diffusion/unet.py; layout in shared/param_spec/unet.py).

Shapes: B batch, Ta horizon (the convolutions' length axis), Da action dim (the input channels), C channels.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from core_torch.networks.activations import make_activation
from core_torch.networks.embeddings import SinusoidalPosEmb
from core_torch.networks.linear import Linear
from core_torch.networks.mlp import build_mlp
from shared.param_spec.base import as_tuple
from shared.param_spec.unet import Unet1DConfig


class Conv1dBlock(nn.Module):
    """Conv1d (length kept) -> GroupNorm (with n_groups) -> activation, at upstream's indices 0, 2, 4."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int | None = None,
                 activation_type: str = "Mish", eps: float = 1e-5) -> None:
        super().__init__()
        layers: list[tuple[str, nn.Module]] = [
            ("0", nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2))]
        if n_groups is not None:
            layers.append(("2", nn.GroupNorm(n_groups, out_channels, eps=eps)))
        layers.append(("4", make_activation(activation_type)))
        self.block = nn.Sequential(OrderedDict(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, L) -> (B, C_out, L)."""
        return self.block(x)


class ResidualBlock1D(nn.Module):
    """Two Conv1dBlocks with FiLM from the global condition between them, plus a (1x1 conv) skip."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, kernel_size: int = 5,
                 n_groups: int | None = None, cond_predict_scale: bool = False, larger_encoder: bool = False,
                 activation_type: str = "Mish", groupnorm_eps: float = 1e-5) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([
            Conv1dBlock(in_channels, out_channels, kernel_size, n_groups, activation_type, groupnorm_eps),
            Conv1dBlock(out_channels, out_channels, kernel_size, n_groups, activation_type, groupnorm_eps),
        ])
        self.out_channels = out_channels
        self.cond_predict_scale = cond_predict_scale
        film = 2 * out_channels if cond_predict_scale else out_channels
        if larger_encoder:
            self.cond_encoder = nn.Sequential(
                Linear(cond_dim, film), make_activation(activation_type), Linear(film, film),
                make_activation(activation_type), Linear(film, film))
        else:
            self.cond_encoder = nn.Sequential(OrderedDict([
                ("0", make_activation(activation_type)), ("1", Linear(cond_dim, film))]))
        self.residual_conv = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, L), cond (B, G) -> (B, C_out, L)."""
        out = self.blocks[0](x)
        embed = self.cond_encoder(cond)[:, :, None]  # (B, film, 1)
        if self.cond_predict_scale:  # scale first, then bias (upstream's (B, 2, C, 1) split)
            out = embed[:, : self.out_channels] * out + embed[:, self.out_channels :]
        else:
            out = out + embed
        out = self.blocks[1](out)
        return out + (x if self.residual_conv is None else self.residual_conv(x))


class Downsample1d(nn.Module):
    """Stride-2 Conv1d (kernel 3, padding 1): L -> ceil(L / 2)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample1d(nn.Module):
    """Stride-2 ConvTranspose1d (kernel 4, padding 1): L -> 2 L."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose1d(dim, dim, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Unet1D(nn.Module):
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
    ) -> None:
        super().__init__()
        cfg = Unet1DConfig(action_dim, cond_dim, diffusion_step_embed_dim, dim, as_tuple(dim_mults),
                           smaller_encoder, as_tuple(cond_mlp_dims), kernel_size, n_groups, activation_type,
                           cond_predict_scale, groupnorm_eps)
        self.config = cfg
        dsed = diffusion_step_embed_dim
        self.time_mlp = nn.Sequential(SinusoidalPosEmb(dsed), Linear(dsed, 4 * dsed), nn.Mish(),
                                      Linear(4 * dsed, dsed))
        cond = cfg.cond_mlp()
        self.cond_mlp = None if cond is None else build_mlp(cond)

        def block(c_in: int, c_out: int) -> ResidualBlock1D:
            return ResidualBlock1D(c_in, c_out, cfg.global_cond_dim, kernel_size, n_groups, cond_predict_scale,
                                   cfg.large_cond_encoder, activation_type, groupnorm_eps)

        mid = cfg.widths[-1]
        self.mid_modules = nn.ModuleList([block(mid, mid), block(mid, mid)])
        last = len(cfg.levels) - 1
        self.down_modules = nn.ModuleList([
            nn.ModuleList([block(c_in, c_out), block(c_out, c_out),
                           Downsample1d(c_out) if i < last else nn.Identity()])
            for i, (c_in, c_out) in enumerate(cfg.levels)])
        self.up_modules = nn.ModuleList([
            nn.ModuleList([block(2 * c_out, c_in), block(c_in, c_in), Upsample1d(c_in)])
            for c_in, c_out in reversed(cfg.levels[1:])])
        self.final_conv = nn.Sequential(
            Conv1dBlock(dim, dim, kernel_size, n_groups, activation_type, groupnorm_eps),
            nn.Conv1d(dim, action_dim, 1))

    @classmethod
    def from_config(cls, cfg: Unet1DConfig) -> Unet1D:
        return cls(**cfg.__dict__)

    def forward(self, x: torch.Tensor, t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """x (B, Ta, Da), t (B,) int, state (B, To, Do) -> (B, Ta, Da)."""
        return self.denoise(x, self.time_embedding(t), self.condition(state))

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """t (S,) -> (S, dsed)."""
        return self.time_mlp(t.reshape(-1))

    def condition(self, state: torch.Tensor) -> torch.Tensor:
        """state (B, To, Do) -> (B, C): the observation part of every FiLM input, the same at every step."""
        cond = state.reshape(state.shape[0], -1)
        return cond if self.cond_mlp is None else self.cond_mlp(cond)

    def denoise(self, x: torch.Tensor, t_emb: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, Ta, Da), t_emb (B or 1, dsed), cond (B, C) -> (B, Ta, Da); Ta a multiple of horizon_multiple."""
        B, Ta, _ = x.shape
        if Ta % self.config.horizon_multiple:
            raise ValueError(f"Unet1D with dim_mults {list(self.config.dim_mults)} needs a horizon that is a "
                             f"multiple of {self.config.horizon_multiple}, got {Ta}")
        g = torch.cat([t_emb.expand(B, -1), cond], dim=-1)  # (B, G)
        h = x.transpose(1, 2)  # (B, Da, Ta): channels first
        skips = []
        for resnet, resnet2, downsample in self.down_modules:
            h = resnet2(resnet(h, g), g)
            skips.append(h)
            h = downsample(h)
        for mid in self.mid_modules:
            h = mid(h, g)
        for resnet, resnet2, upsample in self.up_modules:
            h = torch.cat([h, skips.pop()], dim=1)  # (B, 2 C, L)
            h = upsample(resnet2(resnet(h, g), g))
        return self.final_conv(h).transpose(1, 2)  # (B, Ta, Da)
