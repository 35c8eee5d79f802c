"""Building blocks every network spec uses: activations, the MLP (upstream's MLP / ResidualMLP),
dimension checks, Linear and norm entries, PyTorch-default initialisation drawn in numpy."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.config.reader import SettingError, one_of

ACTIVATIONS = ("ReLU", "ELU", "GELU", "Tanh", "Mish", "Identity", "Softplus", "SiLU")
_ACTIVATION = one_of(*ACTIVATIONS)


@dataclass(frozen=True)
class MLPConfig:
    """Arguments shared by MLP and ResidualMLP (upstream names)."""

    dim_list: tuple[int, ...]
    activation_type: str = "Mish"
    out_activation_type: str = "Identity"
    use_layernorm: bool = False
    use_layernorm_final: bool = False
    dropout: float = 0.0
    residual_style: bool = False

    def __post_init__(self) -> None:
        for act in (self.activation_type, self.out_activation_type):
            if act not in ACTIVATIONS:
                raise ValueError(f"unknown activation {act!r}; choose one of {', '.join(ACTIVATIONS)}")
        if len(self.dim_list) < 2:
            raise ValueError(f"an MLP needs at least input and output dims, got {list(self.dim_list)}")
        if self.residual_style:
            hidden = len(self.dim_list) - 3
            if hidden < 0 or hidden % 2:
                raise ValueError(
                    "a residual MLP needs an odd number of hidden dims (1 + 2 per residual block), "
                    f"got {list(self.dim_list[1:-1])}"
                )
            if len(set(self.dim_list[1:-1])) > 1:
                raise ValueError(f"a residual MLP needs equal hidden dims, got {list(self.dim_list[1:-1])}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def num_residual_blocks(self) -> int:
        return (len(self.dim_list) - 3) // 2



def _check_dims(**dims: int | Sequence[int] | None) -> None:
    """Each given dim (or list of dims) must be a positive int; lists must not be empty."""
    for name, value in dims.items():
        values = [value] if isinstance(value, int) else value
        if values is None:
            continue
        if not values or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in values):
            if isinstance(value, int):
                raise SettingError(name, f"must be a positive integer, got {value!r}")
            raise SettingError(name, f"must be positive integers, got {list(value)!r}")


def _check_residual_hidden(key: str, dims: Sequence[int], ends_in_output: bool = False) -> None:
    """A residual MLP (upstream's ResidualMLP, residual_style: true) is an input layer, residual blocks of
    two layers each, and an output layer, all hidden layers one width: its hidden dims must be an odd
    number of equal values. `dims` is the config's list; with `ends_in_output` its last value is the
    MLP's output width rather than a hidden dim (Gaussian_MLP's base network)."""
    hidden = dims[:-1] if ends_in_output else dims
    if len(hidden) % 2 == 0 or len(set(hidden)) > 1:
        layout = ("an odd number of equal hidden widths, then the output width", "1 + 2 per residual block, "
                  "then 1, e.g. [256, 256]") if ends_in_output else ("an odd number of equal widths",
                                                                  "1 + 2 per residual block, e.g. [512, 512, 512]")
        raise SettingError(key, f"must be {layout[0]} for a residual MLP (residual_style: true; {layout[1]}), "
                                f"got {list(dims)}")


def _linear(spec: OrderedDict, name: str, fan_in: int, fan_out: int) -> None:
    spec[f"{name}.weight"] = (fan_out, fan_in)
    spec[f"{name}.bias"] = (fan_out,)


def _norm(spec: OrderedDict, name: str, dim: int) -> None:
    spec[f"{name}.weight"] = (dim,)
    spec[f"{name}.bias"] = (dim,)


def mlp_spec(cfg: MLPConfig, prefix: str = "") -> OrderedDict:
    spec: OrderedDict = OrderedDict()
    dims = cfg.dim_list
    if cfg.residual_style:
        hidden = dims[1]
        _linear(spec, f"{prefix}layers.0", dims[0], hidden)
        for b in range(cfg.num_residual_blocks):
            block = f"{prefix}layers.{b + 1}"
            _linear(spec, f"{block}.l1", hidden, hidden)
            _linear(spec, f"{block}.l2", hidden, hidden)
            if cfg.use_layernorm:
                _norm(spec, f"{block}.norm1", hidden)
                _norm(spec, f"{block}.norm2", hidden)
        last = cfg.num_residual_blocks + 1
        _linear(spec, f"{prefix}layers.{last}", hidden, dims[-1])
        if cfg.use_layernorm_final:
            _norm(spec, f"{prefix}layers.{last + 1}", dims[-1])
        return spec
    n = len(dims) - 1
    for i in range(n):
        _linear(spec, f"{prefix}moduleList.{i}.linear_1", dims[i], dims[i + 1])
        if cfg.use_layernorm and (i < n - 1 or cfg.use_layernorm_final):
            _norm(spec, f"{prefix}moduleList.{i}.norm_1", dims[i + 1])
    return spec


def fan_in(weight_shape: Sequence[int]) -> int:
    """Inputs per output of a Linear (out, in), Conv1d (out, in, k) or ConvTranspose1d (in, out, k) weight, as torch
    counts them for its default initialisation: prod(shape[1:])."""
    return int(np.prod(weight_shape[1:]))


def torch_default_init(spec: OrderedDict, seed: int, overrides: dict[str, float] | None = None) -> OrderedDict:
    """Parameters drawn like PyTorch's nn.Linear / nn.LayerNorm defaults, from numpy.

    Linear and convolution weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = prod(weight.shape[1:])
    as torch computes it (a Linear's in_features; Conv1d in * k, ConvTranspose1d out * k); norms get weight 1,
    bias 0 (a 1-d `.weight` is a norm scale); free parameters take `overrides[name]` (default 0).
    float32 arrays, keyed by canonical name.
    """
    rng = np.random.default_rng(seed)
    params: OrderedDict = OrderedDict()
    for name, shape in spec.items():
        module = name.rsplit(".", 1)[0]
        weight_shape = spec.get(f"{module}.weight")
        is_norm = weight_shape is not None and len(weight_shape) == 1
        if not name.endswith((".weight", ".bias")):  # a free parameter such as a log-variance
            value = np.full(shape, overrides.get(name, 0.0) if overrides else 0.0)
        elif is_norm:
            value = np.ones(shape) if name.endswith(".weight") else np.zeros(shape)
        else:
            bound = 1.0 / np.sqrt(fan_in(weight_shape))
            value = rng.uniform(-bound, bound, size=shape)
        params[name] = value.astype(np.float32)
    return params


def as_tuple(values: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if values is None else tuple(int(v) for v in values)
