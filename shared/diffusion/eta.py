"""DDIM eta of DPPO's fine-tuning policy (upstream model/diffusion/eta.py), framework-free.

Four kinds, named by the config's `_target_` (its last dotted part):
  EtaFixed        one scalar from a logit, eta = min + (max - min) (tanh(logit) + 1) / 2; read as a
                  constant (upstream takes `.item()`), so it never receives a gradient.
  EtaAction       the same map on one logit per action dim; learnable.
  EtaState        eta = clamp(base + tanh(mlp_res(state)), min, max), mlp_res: flattened state -> 1.
  EtaStateAction  the same with mlp_res: flattened state -> action_dim.
The MLPs start as xavier-normal(gain) weights and zero biases, so eta starts at base_eta.
Canonical names: `eta.eta_logit`, `eta.mlp_res.moduleList.<i>.linear_1.{weight,bias}`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.errors import ConfigError
from shared.param_spec import ACTIVATIONS, MLPConfig, mlp_spec

ETA_KINDS = ("EtaFixed", "EtaAction", "EtaState", "EtaStateAction")
_STATE_DEFAULTS = {"EtaState": (0.5, 0.1, 1.0), "EtaStateAction": (1.0, 1e-3, 2.0)}  # base, min, max (upstream)


@dataclass(frozen=True)
class EtaConfig:
    kind: str = "EtaFixed"
    base_eta: float = 0.5
    min_eta: float = 0.1
    max_eta: float = 1.0
    action_dim: int = 1
    input_dim: int = 1  # the flattened state, obs_dim * cond_steps (upstream passes obs_dim)
    mlp_dims: tuple[int, ...] = (256, 256)
    activation_type: str = "ReLU"
    out_activation_type: str = "Identity"
    gain: float = 1e-2

    def __post_init__(self) -> None:
        if self.kind not in ETA_KINDS:
            raise ConfigError(f"model.eta._target_ must name one of {', '.join(ETA_KINDS)}, got {self.kind!r}")
        if not self.min_eta <= self.base_eta <= self.max_eta or self.min_eta >= self.max_eta:
            raise ConfigError(f"model.eta needs min_eta <= base_eta <= max_eta and min_eta < max_eta, got "
                              f"{self.min_eta}, {self.base_eta}, {self.max_eta}")
        for act in (self.activation_type, self.out_activation_type):
            if act not in ACTIVATIONS:
                raise ConfigError(f"model.eta activation must be one of {', '.join(ACTIVATIONS)}, got {act!r}")

    @property
    def state_dependent(self) -> bool:
        return self.kind in ("EtaState", "EtaStateAction")

    @property
    def out_dim(self) -> int:
        """Width of eta per sample: 1 (shared by all action dims) or action_dim."""
        return self.action_dim if self.kind in ("EtaAction", "EtaStateAction") else 1

    def mlp(self) -> MLPConfig:
        return MLPConfig((self.input_dim, *self.mlp_dims, self.out_dim), self.activation_type,
                         self.out_activation_type)

    def logit(self) -> float:
        """The logit upstream initialises so that the map gives base_eta (inf when base_eta = max_eta)."""
        with np.errstate(divide="ignore"):
            return float(np.arctanh(np.float32(2 * (self.base_eta - self.min_eta) / (self.max_eta - self.min_eta) - 1)))

    def fixed_value(self) -> float:
        """EtaFixed's eta as float32 arithmetic gives it (what the module returns)."""
        f = np.float32
        t = np.tanh(f(self.logit()))
        return float(f(0.5) * (t + f(1)) * f(self.max_eta - self.min_eta) + f(self.min_eta))


def eta_config(section: dict[str, Any], action_dim: int, input_dim: int) -> EtaConfig:
    """Read `model.eta` (upstream's keys); `_target_` defaults to EtaFixed, input/action dims to the model's."""
    known = {"_target_", "base_eta", "min_eta", "max_eta", "action_dim", "input_dim", "mlp_dims",
             "activation_type", "out_activation_type", "gain"}
    for key in section:
        if key not in known:
            raise ConfigError(f"unknown config key 'model.eta.{key}'")
    kind = str(section.get("_target_") or "EtaFixed").rsplit(".", 1)[-1]
    base, lo, hi = _STATE_DEFAULTS.get(kind, (0.5, 0.1, 1.0))
    dims = section.get("mlp_dims", [256, 256])
    if not isinstance(dims, list | tuple) or not all(isinstance(v, int) and v > 0 for v in dims):
        raise ConfigError(f"config key 'model.eta.mlp_dims' must be a list of positive ints, got {dims!r}")
    return EtaConfig(kind=kind, base_eta=float(section.get("base_eta", base)),
                     min_eta=float(section.get("min_eta", lo)), max_eta=float(section.get("max_eta", hi)),
                     action_dim=int(section.get("action_dim", action_dim)),
                     input_dim=int(section.get("input_dim", input_dim)), mlp_dims=tuple(int(v) for v in dims),
                     activation_type=str(section.get("activation_type", "ReLU")),
                     out_activation_type=str(section.get("out_activation_type", "Identity")),
                     gain=float(section.get("gain", 1e-2)))


def eta_spec(cfg: EtaConfig, prefix: str = "eta.") -> OrderedDict:
    if cfg.state_dependent:
        return mlp_spec(cfg.mlp(), f"{prefix}mlp_res.")
    return OrderedDict([(f"{prefix}eta_logit", (cfg.out_dim,))])


def eta_init(cfg: EtaConfig, seed: int, prefix: str = "eta.") -> OrderedDict:
    """Upstream's initialisation in numpy: the logit at base_eta, or xavier-normal(gain) weights and zero biases."""
    rng = np.random.default_rng([seed, 17])
    params: OrderedDict = OrderedDict()
    for name, shape in eta_spec(cfg, prefix).items():
        if name.endswith("eta_logit"):
            value = np.full(shape, cfg.logit())
        elif name.endswith(".bias"):
            value = np.zeros(shape)
        else:
            fan_out, fan_in = shape
            value = rng.normal(0.0, cfg.gain * np.sqrt(2.0 / (fan_in + fan_out)), size=shape)
        params[name] = value.astype(np.float32)
    return params
