"""The network-family registry: every policy network the project builds, declared once.

A family is its config dataclass (upstream's constructor arguments; `UPSTREAM_TARGETS` names upstream's
`_target_`s), its spec function (canonical parameter names and shapes) and its twin class, found at
`core_torch.networks.<module>.<cls>` and `core_tf.networks.<module>.<cls>`. A config section whose type is a
role's union (`role_union("denoiser")`) is read as the family its `_target_` names (the first family of the
role when it names none); the twins build any family with `build_network(cfg)` (core_*/networks/registry.py);
drivers get its spec from `network_spec`. Adding a family: its own modules and one entry here.
"""

from __future__ import annotations

import typing
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.param_spec import (
    CriticObsConfig,
    DiffusionMLPConfig,
    GaussianMLPConfig,
    critic_obs_spec,
    diffusion_mlp_spec,
    gaussian_mlp_spec,
    torch_default_init,
)
from shared.param_spec.gmm_mlp import GMMMLPConfig, gmm_mlp_spec
from shared.param_spec.transformer import (
    GaussianTransformerConfig,
    GMMTransformerConfig,
    gaussian_transformer_spec,
    gmm_transformer_spec,
    transformer_init,
)
from shared.param_spec.unet import Unet1DConfig, unet_spec
from shared.param_spec.vit import (
    GaussianVisionMLPConfig,
    VisionDiffusionMLPConfig,
    ViTCriticConfig,
    gaussian_vision_mlp_spec,
    vision_diffusion_mlp_spec,
    vision_init,
    vit_critic_spec,
)

ROLES = ("denoiser", "gaussian", "gmm", "critic")


@dataclass(frozen=True)
class NetworkFamily:
    """name: the family's key; role: what the network outputs (a denoiser's noise or x0, a Gaussian's
    means and scales, a mixture's means, scales and logits, a critic's state value); config/spec: its settings
    and parameter spec; module/cls: the twin class, the same path in core_torch/networks and core_tf/networks; init: the
    family's own canonical initialisation `init(cfg, seed, prefix)` where upstream's differs from torch's
    defaults (None: torch_default_init of the spec)."""

    name: str
    role: str
    config: type
    spec: Callable[..., OrderedDict]
    module: str
    cls: str
    init: Callable[..., OrderedDict] | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"network family {self.name}: role {self.role!r} is not one of {ROLES}")
        if not getattr(self.config, "UPSTREAM_TARGETS", ()):
            raise ValueError(f"network family {self.name}: {self.config.__name__}.UPSTREAM_TARGETS names none")


NETWORK_FAMILIES: tuple[NetworkFamily, ...] = (
    NetworkFamily("diffusion_mlp", "denoiser", DiffusionMLPConfig, diffusion_mlp_spec, "diffusion_mlp",
                  "DiffusionMLP"),
    NetworkFamily("unet", "denoiser", Unet1DConfig, unet_spec, "unet", "Unet1D"),
    NetworkFamily("gaussian_mlp", "gaussian", GaussianMLPConfig, gaussian_mlp_spec, "gaussian_mlp", "GaussianMLP"),
    NetworkFamily("gmm_mlp", "gmm", GMMMLPConfig, gmm_mlp_spec, "gmm_mlp", "GMMMLP"),
    NetworkFamily("gaussian_transformer", "gaussian", GaussianTransformerConfig, gaussian_transformer_spec,
                  "transformer", "GaussianTransformer", transformer_init),
    NetworkFamily("gmm_transformer", "gmm", GMMTransformerConfig, gmm_transformer_spec, "transformer",
                  "GMMTransformer", transformer_init),
    NetworkFamily("vision_diffusion_mlp", "denoiser", VisionDiffusionMLPConfig, vision_diffusion_mlp_spec,
                  "vision", "VisionDiffusionMLP", vision_init),
    NetworkFamily("gaussian_vision_mlp", "gaussian", GaussianVisionMLPConfig, gaussian_vision_mlp_spec, "vision",
                  "GaussianVisionMLP", vision_init),
    NetworkFamily("critic_obs", "critic", CriticObsConfig, critic_obs_spec, "critic", "CriticObs"),
    NetworkFamily("vit_critic", "critic", ViTCriticConfig, vit_critic_spec, "vision", "ViTCritic", vision_init),
)

_BY_CONFIG = {f.config: f for f in NETWORK_FAMILIES}


def family_of(cfg: Any) -> NetworkFamily:
    """The family of a network's settings."""
    try:
        return _BY_CONFIG[type(cfg)]
    except KeyError:
        raise TypeError(f"{type(cfg).__name__} is not a registered network family's config") from None


def network_spec(cfg: Any, prefix: str = "") -> OrderedDict:
    """Canonical parameter names and shapes of the network `cfg` configures, each name after `prefix`."""
    return family_of(cfg).spec(cfg, prefix)


def network_init(cfg: Any, seed: int, prefix: str = "", overrides: dict[str, float] | None = None) -> OrderedDict:
    """Canonical float32 initial parameters of the network `cfg` configures (its family's init, else torch's
    defaults), names after `prefix`; `overrides` fills free parameters such as a log-variance with a value."""
    family = family_of(cfg)
    if family.init is None:
        return torch_default_init(family.spec(cfg, prefix), seed, overrides)
    params = family.init(cfg, seed, prefix)
    for name, value in (overrides or {}).items():
        params[name] = np.full(params[name].shape, value, np.float32)
    return params


def family_init_over(init: OrderedDict, cfg: Any, seed: int, prefix: str,
                     overrides: dict[str, float] | None = None) -> OrderedDict:
    """`init` (torch_default_init of a spec holding the network `cfg` configures under `prefix`, and more) with that
    network's parameters replaced by its family's own init from `seed` where the family has one (a transformer's);
    the others' numbers stay those of `init`'s stream."""
    if family_of(cfg).init is not None:
        init.update(network_init(cfg, seed, prefix, overrides))
    return init


def role_union(role: str) -> Any:
    """The settings type of a network section of this role: a union of its families' configs (the first is
    the default when a section names no `_target_`)."""
    configs = tuple(f.config for f in NETWORK_FAMILIES if f.role == role)
    if not configs:
        raise ValueError(f"no network family has role {role!r}")
    return configs[0] if len(configs) == 1 else typing.Union[configs]  # noqa: UP007 (built from a tuple)


def upstream_targets(role: str) -> tuple[str, ...]:
    """Every upstream `_target_` a network section of this role may name."""
    return tuple(t for f in NETWORK_FAMILIES if f.role == role for t in f.config.UPSTREAM_TARGETS)


# Settings types of the network sections (read as the family `_target_` names).
DenoiserNetworkConfig = role_union("denoiser")
GaussianNetworkConfig = role_union("gaussian")
GMMNetworkConfig = role_union("gmm")
CriticNetworkConfig = role_union("critic")
