"""The ViT image encoder (upstream's VitEncoder / MinVit, both patch embeddings), SpatialEmb and the random-shift
crop, with upstream's parameter names; shapes, checks and the init live in shared/param_spec/vit.py, the shifts
in shared/data/random_shifts.py. Attention is written in plain ops (as the TF twin writes it)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from core_torch.networks.linear import Linear
from shared.data.random_shifts import SHIFT_PAD, shift_indices
from shared.param_spec.vit import FF_MULT, GROUP_NORM_EPS, LAYER_NORM_EPS, PIXEL_SCALE, VitEncoderConfig


class PatchEmbed1(nn.Module):
    """One 8x8 stride-8 convolution: (B, C, H, W) -> (B, H/8 * W/8, E)."""

    def __init__(self, embed_dim: int, num_channel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_channel, embed_dim, kernel_size=8, stride=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten(2).transpose(1, 2)  # (B, E, h, w) -> (B, h w, E), rows first


class PatchEmbed2(nn.Module):
    """Conv 8x8 stride 4, [GroupNorm(E, E)], ReLU, conv 3x3 stride 2: (B, C, H, W) -> (B, h w, E)."""

    def __init__(self, embed_dim: int, num_channel: int, use_norm: bool) -> None:
        super().__init__()
        norm = nn.GroupNorm(embed_dim, embed_dim, eps=GROUP_NORM_EPS) if use_norm else nn.Identity()
        self.embed = nn.Sequential(nn.Conv2d(num_channel, embed_dim, kernel_size=8, stride=4), norm, nn.ReLU(),
                                   nn.Conv2d(embed_dim, embed_dim, kernel_size=3, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x).flatten(2).transpose(1, 2)


class MultiHeadAttention(nn.Module):
    """Self-attention, no mask; qkv_proj's output columns are (q|k|v, head, d) (upstream's rearrange)."""

    def __init__(self, embed_dim: int, num_head: int) -> None:
        super().__init__()
        self.num_head = num_head
        self.qkv_proj = Linear(embed_dim, 3 * embed_dim)
        self.out_proj = Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, E) -> (B, T, E)."""
        B, T, E = x.shape
        h = self.num_head
        d = E // h
        q, k, v = self.qkv_proj(x).reshape(B, T, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)  # (B, h, T, d) each
        attn = F.softmax((q * (1.0 / math.sqrt(d))) @ k.transpose(-2, -1), dim=-1)  # (B, h, T, T)
        return self.out_proj((attn @ v).transpose(1, 2).reshape(B, T, E))


class TransformerLayer(nn.Module):
    """Pre-norm: x + mha(ln1(x)), then x + linear2(gelu(linear1(ln2(x)))) (exact GELU, upstream's dropout 0)."""

    def __init__(self, embed_dim: int, num_head: int) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.mha = MultiHeadAttention(embed_dim, num_head)
        self.layer_norm2 = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.linear1 = Linear(embed_dim, FF_MULT * embed_dim)
        self.linear2 = Linear(FF_MULT * embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mha(self.layer_norm1(x))
        return x + self.linear2(F.gelu(self.linear1(self.layer_norm2(x))))


class MinVit(nn.Module):
    """Patch embedding + learned positions, transformer layers, final LayerNorm: (B, C, H, W) -> (B, N, E)."""

    def __init__(self, cfg: VitEncoderConfig) -> None:
        super().__init__()
        v = cfg.cfg
        if v.embed_style == "embed1":
            self.patch_embed: nn.Module = PatchEmbed1(v.embed_dim, cfg.num_channel)
        else:
            self.patch_embed = PatchEmbed2(v.embed_dim, cfg.num_channel, bool(v.embed_norm))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_patch, v.embed_dim))
        self.net = nn.Sequential(*[TransformerLayer(v.embed_dim, v.num_heads) for _ in range(v.depth)])
        self.norm = nn.LayerNorm(v.embed_dim, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.net(self.patch_embed(x) + self.pos_embed))


class VitEncoder(nn.Module):
    """Pixels in [0, 255] (B, C, H, W) -> patch features (B, N, E), the input mapped to x / 255 - 0.5."""

    def __init__(self, cfg: VitEncoderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.vit = MinVit(cfg)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.vit(obs / PIXEL_SCALE - 0.5)


class SpatialEmb(nn.Module):
    """Per patch-feature channel, a projection of (that channel over the N patches, the proprioception), then
    LayerNorm, ReLU, a learned weighting summed over the E channels: feat (B, N, E), prop (B, P) -> (B, proj)."""

    def __init__(self, num_patch: int, patch_dim: int, prop_dim: int, proj_dim: int, dropout: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, patch_dim, proj_dim))
        self.input_proj = nn.Sequential(Linear(num_patch + prop_dim, proj_dim),
                                        nn.LayerNorm(proj_dim, eps=LAYER_NORM_EPS), nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.weight)

    def forward(self, feat: torch.Tensor, prop: torch.Tensor) -> torch.Tensor:
        feat = feat.transpose(1, 2)  # (B, E, N)
        feat = torch.cat([feat, prop[:, None, :].expand(-1, feat.shape[1], -1)], dim=-1)  # (B, E, N + P)
        return self.dropout((self.weight * self.input_proj(feat)).sum(1))


def random_shift(images: torch.Tensor, shifts: np.ndarray, pad: int = SHIFT_PAD) -> torch.Tensor:
    """images (B, C, H, W), shifts (B, 2) drawn by shared.data.random_shifts.draw_shifts -> the shifted batch:
    the replicate-padded images cropped at the shifts (shared/data/random_shifts.py)."""
    B, _, H, W = images.shape
    rows, cols = (torch.from_numpy(a).to(images.device) for a in shift_indices(shifts, H, W, pad))
    b = torch.arange(B, device=images.device)[:, None, None]
    return images[b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
