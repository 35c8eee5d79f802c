"""MLP and ResidualMLP with upstream DPPO's module names (twin of core_torch/networks/mlp.py)."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from core_tf.networks.activations import make_activation
from core_tf.networks.layers import Dropout, LayerNorm, Linear, Sequential
from core_tf.runtime.module import Module
from shared.param_spec import MLPConfig


class MLP(Module):
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
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        MLPConfig(tuple(dim_list), activation_type, out_activation_type, use_layernorm, use_layernorm_final, dropout)
        n = len(dim_list) - 1
        self.num_layers = n
        for i in range(n):
            hidden = i < n - 1
            layers: list[tuple[str, Module]] = [("linear_1", Linear(dim_list[i], dim_list[i + 1]))]
            if use_layernorm and (hidden or use_layernorm_final):
                layers.append(("norm_1", LayerNorm(dim_list[i + 1])))
            if dropout > 0 and (hidden or use_drop_final):
                layers.append(("dropout_1", Dropout(dropout)))
            layers.append(("act_1", make_activation(activation_type if hidden else out_activation_type)))
            self.add_child(f"moduleList.{i}", Sequential(layers))

    def call(self, x: tf.Tensor) -> tf.Tensor:
        for i in range(self.num_layers):
            x = self.child(f"moduleList.{i}")(x)
        return x


class TwoLayerPreActivationResNetLinear(Module):
    """x + l2(act(norm2(l1(act(norm1(x)))))), with optional dropout after each linear."""

    def __init__(self, hidden_dim: int, activation_type: str = "Mish", use_layernorm: bool = False,
                 dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.l1 = self.add_child("l1", Linear(hidden_dim, hidden_dim))
        self.l2 = self.add_child("l2", Linear(hidden_dim, hidden_dim))
        self.act = self.add_child("act", make_activation(activation_type))
        self.norm1 = self.add_child("norm1", LayerNorm(hidden_dim, eps=1e-6)) if use_layernorm else None
        self.norm2 = self.add_child("norm2", LayerNorm(hidden_dim, eps=1e-6)) if use_layernorm else None
        self.dropout = self.add_child("dropout", Dropout(dropout)) if dropout > 0 else None

    def call(self, x: tf.Tensor) -> tf.Tensor:
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


class ResidualMLP(Module):
    """Linear in, (len(dim_list) - 3) / 2 residual blocks, Linear out (layers.i)."""

    def __init__(
        self,
        dim_list: Sequence[int],
        activation_type: str = "Mish",
        out_activation_type: str = "Identity",
        use_layernorm: bool = False,
        use_layernorm_final: bool = False,
        dropout: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        cfg = MLPConfig(tuple(dim_list), activation_type, out_activation_type, use_layernorm,
                        use_layernorm_final, dropout, residual_style=True)
        hidden = dim_list[1]
        layers: list[Module] = [Linear(dim_list[0], hidden)]
        for _ in range(cfg.num_residual_blocks):
            layers.append(TwoLayerPreActivationResNetLinear(hidden, activation_type, use_layernorm, dropout))
        layers.append(Linear(hidden, dim_list[-1]))
        if use_layernorm_final:
            layers.append(LayerNorm(dim_list[-1]))
        layers.append(make_activation(out_activation_type))
        self.num_layers = len(layers)
        for i, layer in enumerate(layers):
            self.add_child(f"layers.{i}", layer)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        for i in range(self.num_layers):
            x = self.child(f"layers.{i}")(x)
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
