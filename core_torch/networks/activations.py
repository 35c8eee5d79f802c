"""Activation modules by upstream name; each call returns a fresh module."""

from __future__ import annotations

from torch import nn

_FACTORIES = {
    "ReLU": nn.ReLU,
    "ELU": nn.ELU,
    "GELU": nn.GELU,
    "Tanh": nn.Tanh,
    "Mish": nn.Mish,
    "Identity": nn.Identity,
    "Softplus": nn.Softplus,
    "SiLU": nn.SiLU,
}


def make_activation(name: str) -> nn.Module:
    if name not in _FACTORIES:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(_FACTORIES)}")
    return _FACTORIES[name]()
