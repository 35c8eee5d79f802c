"""MLP and ResidualMLP with upstream DPPO's module names."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from core_torch.networks.activations import make_activation
from core_torch.networks.linear import Linear
from shared.param_spec import MLPConfig


class MLP(nn.Module):
    """Linear -> [LayerNorm] -> [Dropout] -> activation, per layer (moduleList.i.*)."""

    def __init__(
        self,
        dim_list: Sequence[int],
        activation_type: str = "Tanh",
        out_activation_type: str = "Identity",
        use_layernorm: bool = False,
        use_layernorm_final: bool = False,
        dropout: float = 0.0,
        use_drop_final: bool = False,
    ) -> None:
        super().__init__()
        MLPConfig(tuple(dim_list), activation_type, out_activation_type, use_layernorm, use_layernorm_final, dropout)
        n = len(dim_list) - 1
        self.moduleList = nn.ModuleList()
        for i in range(n):
            hidden = i < n - 1
            layers: list[tuple[str, nn.Module]] = [("linear_1", Linear(dim_list[i], dim_list[i + 1]))]
            if use_layernorm and (hidden or use_layernorm_final):
                layers.append(("norm_1", nn.LayerNorm(dim_list[i + 1])))
            if dropout > 0 and (hidden or use_drop_final):
                layers.append(("dropout_1", nn.Dropout(dropout)))
            layers.append(("act_1", make_activation(activation_type if hidden else out_activation_type)))
            self.moduleList.append(nn.Sequential(OrderedDict(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.moduleList:
            x = layer(x)
        return x


class TwoLayerPreActivationResNetLinear(nn.Module):
    """x + l2(act(norm2(l1(act(norm1(x)))))), with optional dropout after each linear."""

    def __init__(self, hidden_dim: int, activation_type: str = "Mish", use_layernorm: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.l1 = Linear(hidden_dim, hidden_dim)
        self.l2 = Linear(hidden_dim, hidden_dim)
        self.act = make_activation(activation_type)
        self.norm1 = nn.LayerNorm(hidden_dim, eps=1e-6) if use_layernorm else None
        self.norm2 = nn.LayerNorm(hidden_dim, eps=1e-6) if use_layernorm else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.norm1 is None else self.norm1(x)
        h = self.l1(self.act(h))
        if self.dropout is not None:
            h = self.dropout(h)
        if self.norm2 is not None:
            h = self.norm2(h)
        h = self.l2(self.act(h))
        if self.dropout is not None:
            h = self.dropout(h)
        return h + x


class ResidualMLP(nn.Module):
    """Linear in, (len(dim_list) - 3) / 2 residual blocks, Linear out (layers.i)."""

    def __init__(
        self,
        dim_list: Sequence[int],
        activation_type: str = "Mish",
        out_activation_type: str = "Identity",
        use_layernorm: bool = False,
        use_layernorm_final: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        cfg = MLPConfig(tuple(dim_list), activation_type, out_activation_type, use_layernorm,
                        use_layernorm_final, dropout, residual_style=True)
        hidden = dim_list[1]
        self.layers = nn.ModuleList([Linear(dim_list[0], hidden)])
        for _ in range(cfg.num_residual_blocks):
            self.layers.append(TwoLayerPreActivationResNetLinear(hidden, activation_type, use_layernorm, dropout))
        self.layers.append(Linear(hidden, dim_list[-1]))
        if use_layernorm_final:
            self.layers.append(nn.LayerNorm(dim_list[-1]))
        self.layers.append(make_activation(out_activation_type))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def build_mlp(cfg: MLPConfig) -> MLP | ResidualMLP:
    kwargs = dict(
        activation_type=cfg.activation_type,
        out_activation_type=cfg.out_activation_type,
        use_layernorm=cfg.use_layernorm,
        use_layernorm_final=cfg.use_layernorm_final,
        dropout=cfg.dropout,
    )
    return ResidualMLP(cfg.dim_list, **kwargs) if cfg.residual_style else MLP(cfg.dim_list, **kwargs)
