"""GMM_MLP (upstream model/common/mlp_gmm.py): the observation history -> a mixture of `num_modes` diagonal
Gaussians over the flattened action chunk: per mode a mean (tanh-squashed), a std, and a mixture logit.

Three MLPs of the same layout (plain or residual): mlp_mean (M * Ta * Da outputs), mlp_logvar (the same, only
with a learned std: fixed_std null) and mlp_weights (M logits). A fixed std is a constant; a learned fixed std is
one log-variance per (mode, action dim), `logvar` (M * Da,), shared over the chunk's Ta steps. Log-variances are
clamped to [log std_min^2, log std_max^2] (upstream's logvar_min / logvar_max: constants, not in the spec).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

from shared.config.reader import SettingError, setting
from shared.param_spec.base import _ACTIVATION, MLPConfig, _check_dims, _check_residual_hidden, mlp_spec


@dataclass(frozen=True)
class GMMMLPConfig:
    """Upstream GMM_MLP's constructor arguments (its names and defaults; cond_dim is required)."""

    UPSTREAM_TARGETS: ClassVar[tuple[str, ...]] = ("model.common.mlp_gmm.GMM_MLP",)

    action_dim: int
    horizon_steps: int
    cond_dim: int
    mlp_dims: tuple[int, ...] = (256, 256, 256)
    num_modes: int = setting(5, doc="mixture components M")
    activation_type: str = setting("Mish", check=_ACTIVATION)
    residual_style: bool = False
    use_layernorm: bool = False
    fixed_std: float | None = setting(None, doc="a fixed std (null: learned by mlp_logvar)")
    learn_fixed_std: bool = setting(False, doc="learn one log-variance per mode and action dim, from fixed_std")
    std_min: float = 0.01
    std_max: float = 1.0

    def __post_init__(self) -> None:
        _check_dims(action_dim=self.action_dim, horizon_steps=self.horizon_steps, cond_dim=self.cond_dim,
                    mlp_dims=self.mlp_dims, num_modes=self.num_modes)
        if self.fixed_std is not None and not self.fixed_std > 0:
            raise SettingError("fixed_std", f"must be > 0 (or null: a learned std head), got {self.fixed_std}")
        if self.learn_fixed_std and self.fixed_std is None:
            # upstream would build mlp_logvar and then read a logvar it never made
            raise SettingError("learn_fixed_std", "needs fixed_std (its initial value)")
        if not self.std_min > 0:
            raise SettingError("std_min", f"must be > 0, got {self.std_min}")
        if not self.std_min <= self.std_max:
            raise SettingError("std_max", f"must be >= std_min={self.std_min}, got {self.std_max}")
        if self.residual_style:
            _check_residual_hidden("mlp_dims", self.mlp_dims)
        self.mlp(self.output_dim)  # MLPConfig checks the activation and the layout

    @property
    def chunk_dim(self) -> int:
        """Ta * Da: one mode's mean or std."""
        return self.action_dim * self.horizon_steps

    @property
    def output_dim(self) -> int:
        """M * Ta * Da: mlp_mean's (and mlp_logvar's) outputs."""
        return self.chunk_dim * self.num_modes

    def mlp(self, out_dim: int) -> MLPConfig:
        """The layout every head shares: cond_dim -> mlp_dims -> out_dim, identity output."""
        return MLPConfig((self.cond_dim, *self.mlp_dims, out_dim), self.activation_type, "Identity",
                         use_layernorm=self.use_layernorm, residual_style=self.residual_style)

    def logvar_init(self) -> float:
        """The learned fixed std's starting log-variance, log(fixed_std^2)."""
        return math.log(self.fixed_std**2)


def gmm_mlp_spec(cfg: GMMMLPConfig, prefix: str = "") -> OrderedDict:
    """Canonical names and shapes in upstream's state_dict order (its own parameters first, then the heads)."""
    spec: OrderedDict = OrderedDict()
    if cfg.fixed_std is not None and cfg.learn_fixed_std:
        spec[f"{prefix}logvar"] = (cfg.action_dim * cfg.num_modes,)
    spec.update(mlp_spec(cfg.mlp(cfg.output_dim), f"{prefix}mlp_mean."))
    if cfg.fixed_std is None:
        spec.update(mlp_spec(cfg.mlp(cfg.output_dim), f"{prefix}mlp_logvar."))
    spec.update(mlp_spec(cfg.mlp(cfg.num_modes), f"{prefix}mlp_weights."))
    return spec


def gmm_mlp_init_overrides(cfg: GMMMLPConfig, prefix: str = "") -> dict[str, float]:
    """torch_default_init's values for the free parameters: a learned fixed std starts at log(fixed_std^2)."""
    if cfg.fixed_std is not None and cfg.learn_fixed_std:
        return {f"{prefix}logvar": cfg.logvar_init()}
    return {}
