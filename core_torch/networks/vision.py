"""The image networks of upstream's robomimic *_img configs, upstream's parameter names: VisionDiffusionMLP
(denoiser), GaussianVisionMLP (upstream's Gaussian_VisionMLP) and ViTCritic. Each reads the proprioceptive
history `state` (B, To, Do) and the camera frames `rgb` (B, T, 3 num_img, H, W) in [0, 255] (uint8 or float):
the last img_cond_steps frames stacked on channels per camera, optionally shifted (`shifts` drawn by
shared.data.random_shifts.draw_shifts, (num_img, B, 2); only for a config with augment: true), through the
shared ViT backbone and each camera's readout, then the head on [image features, state]."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core_torch.networks.embeddings import SinusoidalPosEmb
from core_torch.networks.linear import Linear
from core_torch.networks.mlp import build_mlp
from core_torch.networks.vit import SpatialEmb, VitEncoder, random_shift
from core_torch.runtime.precision import float_dtype
from shared.param_spec.vit import (
    LAYER_NORM_EPS,
    GaussianVisionMLPConfig,
    VisionDiffusionMLPConfig,
    ViTCriticConfig,
)


class _Vision(nn.Module):
    """The backbone and the readouts every image network registers (in upstream's order, after its own)."""

    config: VisionDiffusionMLPConfig | GaussianVisionMLPConfig | ViTCriticConfig

    def _build_vision(self) -> None:
        c = self.config
        self.backbone = VitEncoder(c.backbone)
        for name in c.compress_names:
            if c.uses_spatial_emb:
                readout: nn.Module = SpatialEmb(c.backbone.num_patch, c.backbone.embed_dim, c.cond_dim,
                                                c.spatial_emb, c.dropout)
            else:
                readout = nn.Sequential(Linear(c.backbone.repr_dim, c.visual_feature_dim),
                                        nn.LayerNorm(c.visual_feature_dim, eps=LAYER_NORM_EPS),
                                        nn.Dropout(c.dropout), nn.ReLU())
            self.add_module(name, readout)

    def features(self, state: torch.Tensor, rgb: torch.Tensor, shifts: np.ndarray | None) -> torch.Tensor:
        """state (B, P) flat, rgb (B, T, 3 num_img, H, W) -> [image features, state] (B, feature_dim + P)."""
        c = self.config
        if shifts is not None and not c.augment:
            raise ValueError("shifts given to a network whose config has augment: false")
        rgb = rgb[:, -c.img_cond_steps:]
        B, T, _, H, W = rgb.shape
        cams = rgb.reshape(B, T, c.num_img, 3, H, W).transpose(1, 2).reshape(B, c.num_img, T * 3, H, W)
        cams = cams.to(float_dtype())
        feats = []
        for i, name in enumerate(c.compress_names):
            x = cams[:, i]  # (B, 3 T, H, W)
            if shifts is not None:
                x = random_shift(x, shifts[i])
            patches = self.backbone(x)  # (B, N, E)
            readout = getattr(self, name)
            feats.append(readout(patches, state) if c.uses_spatial_emb else readout(patches.flatten(1)))
        return torch.cat([*feats, state], dim=-1)


class VisionDiffusionMLP(_Vision):
    def __init__(self, cfg: VisionDiffusionMLPConfig) -> None:
        super().__init__()
        self.config = cfg
        self._build_vision()
        self.time_embedding = nn.Sequential(SinusoidalPosEmb(cfg.time_dim), Linear(cfg.time_dim, cfg.time_dim * 2),
                                            nn.Mish(), Linear(cfg.time_dim * 2, cfg.time_dim))
        self.mlp_mean = build_mlp(cfg.mlp_mean())

    @classmethod
    def from_config(cls, cfg: VisionDiffusionMLPConfig) -> VisionDiffusionMLP:
        return cls(cfg)

    def forward(self, x: torch.Tensor, t: torch.Tensor, state: torch.Tensor, rgb: torch.Tensor,
                shifts: np.ndarray | None = None) -> torch.Tensor:
        """x (B, Ta, Da), t (B,) int, state (B, To, Do), rgb (B, T, C, H, W) -> (B, Ta, Da)."""
        return self.denoise(x, self.time_embedding(t.reshape(-1)), self.condition(state, rgb, shifts))

    def condition(self, state: torch.Tensor, rgb: torch.Tensor, shifts: np.ndarray | None = None) -> torch.Tensor:
        """-> cond (B, feature_dim + P): the part of the input that is the same at every denoising step."""
        return self.features(state.reshape(state.shape[0], -1), rgb, shifts)

    def denoise(self, x: torch.Tensor, t_emb: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, Ta, Da), t_emb (B or 1, time_dim), cond (B, C) -> (B, Ta, Da); upstream's order [x, t, cond]."""
        B, Ta, Da = x.shape
        h = torch.cat([x.reshape(B, -1), t_emb.expand(B, -1), cond], dim=-1)
        return self.mlp_mean(h).reshape(B, Ta, Da)


class GaussianVisionMLP(_Vision):
    def __init__(self, cfg: GaussianVisionMLPConfig) -> None:
        super().__init__()
        self.config = cfg
        if cfg.learn_fixed_std:
            self.logvar = nn.Parameter(torch.full((cfg.action_dim,), float(np.log(cfg.fixed_std**2))))
        self._build_vision()
        self.mlp_mean = build_mlp(cfg.mlp_mean())
        if cfg.fixed_std is None:
            self.mlp_logvar = build_mlp(cfg.mlp_logvar())
        self.logvar_min, self.logvar_max = cfg.logvar_bounds

    @classmethod
    def from_config(cls, cfg: GaussianVisionMLPConfig) -> GaussianVisionMLP:
        return cls(cfg)

    def forward(self, state: torch.Tensor, rgb: torch.Tensor,
                shifts: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """state (B, To, Do), rgb (B, T, C, H, W) -> mean (tanh-squashed), std, each (B, Ta * Da)."""
        c = self.config
        B = state.shape[0]
        h = self.features(state.reshape(B, -1), rgb, shifts)
        mean = torch.tanh(self.mlp_mean(h))
        if c.fixed_std is None:
            std = torch.exp(0.5 * torch.clamp(self.mlp_logvar(h), self.logvar_min, self.logvar_max))
        elif c.learn_fixed_std:
            logvar = torch.clamp(self.logvar, self.logvar_min, self.logvar_max)
            std = torch.exp(0.5 * logvar).repeat(c.horizon_steps)[None, :].expand(B, -1)
        else:
            std = torch.full_like(mean, c.fixed_std)
        return mean, std


class ViTCritic(_Vision):
    def __init__(self, cfg: ViTCriticConfig) -> None:
        super().__init__()
        self.config = cfg
        self.Q1 = build_mlp(cfg.q1())
        self._build_vision()

    @classmethod
    def from_config(cls, cfg: ViTCriticConfig) -> ViTCritic:
        return cls(cfg)

    def forward(self, state: torch.Tensor, rgb: torch.Tensor, shifts: np.ndarray | None = None) -> torch.Tensor:
        """state (B, To, Do), rgb (B, T, C, H, W) -> V (B, 1)."""
        return self.Q1(self.features(state.reshape(state.shape[0], -1), rgb, shifts))
