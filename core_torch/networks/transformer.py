"""Gaussian_Transformer and GMM_Transformer (upstream's model/common/transformer.py) and the Transformer they
share: learned horizon positions decoded against the embedded observation, upstream's parameter names.

Attention and the pre-norm decoder layer are written in plain ops (as the TF twin writes them) with
torch.nn.MultiheadAttention's / TransformerDecoderLayer's parameters; shapes and the init live in
shared/param_spec/transformer.py.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from core_torch.networks.activations import make_activation
from core_torch.networks.linear import Linear, linear
from shared.param_spec.transformer import (
    FF_MULT,
    LAYER_NORM_EPS,
    GaussianTransformerConfig,
    GMMTransformerConfig,
)

_ACTIVATION = {"gelu": "GELU", "relu": "ReLU"}


class MultiheadAttention(nn.Module):
    """Batch-first multi-head attention without masks; in_proj_weight (3E, E) stacks W_q, W_k, W_v."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim))
        self.out_proj = Linear(embed_dim, embed_dim)
        self.dropout = nn.Dropout(dropout)  # on the attention weights
        nn.init.normal_(self.in_proj_weight, std=0.02)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """query (B, L, E) attends to memory (B, S, E) -> (B, L, E)."""
        B, L, E = query.shape
        S, h = memory.shape[1], self.num_heads
        d = E // h
        q = linear(query, self.in_proj_weight[:E], self.in_proj_bias[:E])  # (B, L, E)
        k, v = linear(memory, self.in_proj_weight[E:], self.in_proj_bias[E:]).chunk(2, dim=-1)  # (B, S, E) each
        q = q.reshape(B, L, h, d).transpose(1, 2) * (1.0 / math.sqrt(d))  # (B, h, L, d)
        k = k.reshape(B, S, h, d).transpose(1, 2)  # (B, h, S, d)
        v = v.reshape(B, S, h, d).transpose(1, 2)
        attn = self.dropout(F.softmax(q @ k.transpose(-2, -1), dim=-1))  # (B, h, L, S)
        out = (attn @ v).transpose(1, 2).reshape(B, L, E)
        return self.out_proj(out)


class TransformerDecoderLayer(nn.Module):
    """Pre-norm (norm_first) decoder layer: self-attention, attention to memory, feed-forward, each residual."""

    def __init__(self, d_model: int, nhead: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout)
        self.linear1 = Linear(d_model, FF_MULT * d_model)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = Linear(FF_MULT * d_model, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.norm3 = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = make_activation(_ACTIVATION[activation])

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """x (B, T, E), memory (B, S, E) -> (B, T, E)."""
        h = self.norm1(x)
        x = x + self.dropout1(self.self_attn(h, h))
        x = x + self.dropout2(self.multihead_attn(self.norm2(x), memory))
        ff = self.linear2(self.dropout(self.activation(self.linear1(self.norm3(x)))))
        return x + self.dropout3(ff)


class TransformerDecoder(nn.Module):
    def __init__(self, num_layers: int, d_model: int, nhead: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [TransformerDecoderLayer(d_model, nhead, dropout, activation) for _ in range(num_layers)])

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, memory)
        return x


class Transformer(nn.Module):
    """Upstream's Transformer with one observation token. forward returns the features before the head
    (ln_f's output, what GMM_Transformer's modes_head reads); the policies apply `head` themselves."""

    def __init__(self, output_dim: int, horizon: int, cond_dim: int, n_layer: int, n_head: int, n_emb: int,
                 p_drop_emb: float, p_drop_attn: float, activation: str) -> None:
        super().__init__()
        self.cond_obs_emb = Linear(cond_dim, n_emb)
        self.cond_pos_emb = nn.Parameter(torch.zeros(1, 1, n_emb))
        self.encoder = nn.Sequential(Linear(n_emb, FF_MULT * n_emb), make_activation("Mish"),
                                     Linear(FF_MULT * n_emb, n_emb))
        self.pos_emb = nn.Parameter(torch.zeros(1, horizon, n_emb))
        self.drop = nn.Dropout(p_drop_emb)
        self.decoder = TransformerDecoder(n_layer, n_emb, n_head, p_drop_attn, activation)
        self.ln_f = nn.LayerNorm(n_emb, eps=LAYER_NORM_EPS)
        self.head = Linear(n_emb, output_dim)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        """cond (B, 1, cond_dim) -> pre-head features (B, H, E)."""
        memory = self.encoder(self.drop(self.cond_obs_emb(cond) + self.cond_pos_emb))  # (B, 1, E)
        x = self.drop(self.pos_emb.expand(cond.shape[0], -1, -1))  # (B, H, E)
        return self.ln_f(self.decoder(x, memory))


def _transformer(cfg: GaussianTransformerConfig | GMMTransformerConfig) -> Transformer:
    return Transformer(cfg.head_dim, cfg.horizon_steps, cfg.cond_dim, cfg.transformer_num_layers,
                       cfg.transformer_num_heads, cfg.transformer_embed_dim, cfg.p_drop_emb, cfg.p_drop_attn,
                       cfg.transformer_activation)


class GaussianTransformer(nn.Module):
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
    ) -> None:
        super().__init__()
        cfg = GaussianTransformerConfig(action_dim, horizon_steps, cond_dim, transformer_embed_dim,
                                        transformer_num_heads, transformer_num_layers, transformer_activation,
                                        p_drop_emb, p_drop_attn, fixed_std, learn_fixed_std, std_min, std_max)
        self.config = cfg
        if cfg.learn_fixed_std:
            self.logvar = nn.Parameter(torch.full((action_dim,), math.log(fixed_std**2)))
        self.transformer = _transformer(cfg)
        self.logvar_min = math.log(std_min**2)
        self.logvar_max = math.log(std_max**2)

    @classmethod
    def from_config(cls, cfg: GaussianTransformerConfig) -> GaussianTransformer:
        return cls(**cfg.__dict__)

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """state (B, To, Do) -> mean, std, each (B, Ta * Da)."""
        c = self.config
        B, Da = state.shape[0], c.action_dim
        out = self.transformer.head(self.transformer(state.reshape(B, 1, -1)))  # (B, Ta, head_dim)
        mean = torch.tanh(out[:, :, :Da]).reshape(B, c.output_dim)
        if c.learn_fixed_std:
            std = torch.exp(0.5 * torch.clamp(self.logvar, self.logvar_min, self.logvar_max))  # (Da,)
            std = std.repeat(c.horizon_steps)[None, :].expand(B, -1)
        elif c.fixed_std is not None:
            std = torch.full_like(mean, c.fixed_std)
        else:
            logvar = torch.clamp(out[:, :, Da:].reshape(B, c.output_dim), self.logvar_min, self.logvar_max)
            std = torch.exp(0.5 * logvar)
        return mean, std


class GMMTransformer(nn.Module):
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
    ) -> None:
        super().__init__()
        cfg = GMMTransformerConfig(action_dim, horizon_steps, cond_dim, num_modes, transformer_embed_dim,
                                   transformer_num_heads, transformer_num_layers, transformer_activation,
                                   p_drop_emb, p_drop_attn, fixed_std, learn_fixed_std, std_min, std_max)
        self.config = cfg
        if cfg.learn_fixed_std:
            self.logvar = nn.Parameter(torch.full((num_modes * action_dim,), math.log(fixed_std**2)))
        self.transformer = _transformer(cfg)
        self.modes_head = Linear(horizon_steps * transformer_embed_dim, num_modes)
        self.logvar_min = math.log(std_min**2)
        self.logvar_max = math.log(std_max**2)

    @classmethod
    def from_config(cls, cfg: GMMTransformerConfig) -> GMMTransformer:
        return cls(**cfg.__dict__)

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """state (B, To, Do) -> means (B, M, Ta * Da), scales (B, M, Ta * Da), mode logits (B, M)."""
        c = self.config
        B, M, Ta, Da = state.shape[0], c.num_modes, c.horizon_steps, c.action_dim
        features = self.transformer(state.reshape(B, 1, -1))  # (B, Ta, E)
        out = self.transformer.head(features)  # (B, Ta, M * Da)
        mean = torch.tanh(out).reshape(B, Ta, M, Da).transpose(1, 2).reshape(B, M, Ta * Da)
        if c.learn_fixed_std:
            std = torch.exp(0.5 * torch.clamp(self.logvar, self.logvar_min, self.logvar_max))  # (M * Da,)
            std = std.reshape(1, M, 1, Da).expand(B, M, Ta, Da).reshape(B, M, Ta * Da)
        else:
            std = torch.full_like(mean, c.fixed_std)
        logits = self.modes_head(features.reshape(B, Ta * c.transformer_embed_dim))  # (B, M)
        return mean, std, logits
