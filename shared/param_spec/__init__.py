"""Canonical parameter names and shapes of every network, framework-free.

Names follow upstream DPPO's PyTorch state_dict keys (so upstream checkpoints map
one to one); Linear weights are stored (out_features, in_features) as in torch.
Both cores must expose exactly these names; a parity test checks it.

One module per network family beside `base` (the MLP and the helpers every spec uses); the
families that predate the package are defined here.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import ClassVar

from shared.config.reader import SettingError, setting
from shared.param_spec.base import (  # noqa: F401  (re-exported: the names every spec user imports)
    _ACTIVATION,
    ACTIVATIONS,
    MLPConfig,
    _check_dims,
    _check_residual_hidden,
    _linear,
    _norm,
    as_tuple,
    mlp_spec,
    torch_default_init,
)


@dataclass(frozen=True)
class DiffusionMLPConfig:
    """Upstream's DiffusionMLP: (noisy chunk, time embedding, observation history) through one MLP."""

    UPSTREAM_TARGETS: ClassVar[tuple[str, ...]] = ("model.diffusion.mlp_diffusion.DiffusionMLP",)

    action_dim: int
    horizon_steps: int
    cond_dim: int
    time_dim: int = 16
    mlp_dims: tuple[int, ...] = (256, 256)
    cond_mlp_dims: tuple[int, ...] | None = None
    activation_type: str = setting("Mish", check=_ACTIVATION)
    out_activation_type: str = setting("Identity", check=_ACTIVATION)
    use_layernorm: bool = False
    residual_style: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _check_dims(action_dim=self.action_dim, horizon_steps=self.horizon_steps, cond_dim=self.cond_dim)
        if self.time_dim < 4 or self.time_dim % 2:
            raise SettingError("time_dim", "must be an even number >= 4 (the sinusoidal time embedding uses "
                                           f"time_dim / 2 >= 2 frequencies), got {self.time_dim}")
        _check_dims(mlp_dims=self.mlp_dims, cond_mlp_dims=self.cond_mlp_dims)
        if not 0.0 <= self.dropout < 1.0:
            raise SettingError("dropout", f"must be in [0, 1), got {self.dropout}")
        if self.residual_style:
            _check_residual_hidden("mlp_dims", self.mlp_dims)
        self.cond_mlp()
        self.mlp_mean()  # MLPConfig checks activations, dropout and the residual layout

    @property
    def output_dim(self) -> int:
        return self.action_dim * self.horizon_steps

    def cond_mlp(self) -> MLPConfig | None:
        if self.cond_mlp_dims is None:
            return None
        return MLPConfig((self.cond_dim, *self.cond_mlp_dims), self.activation_type, "Identity")

    def mlp_mean(self) -> MLPConfig:
        cond_out = self.cond_dim if self.cond_mlp_dims is None else self.cond_mlp_dims[-1]
        input_dim = self.time_dim + self.output_dim + cond_out
        return MLPConfig(
            (input_dim, *self.mlp_dims, self.output_dim),
            self.activation_type,
            self.out_activation_type,
            use_layernorm=self.use_layernorm,
            dropout=self.dropout,
            residual_style=self.residual_style,
        )


@dataclass(frozen=True)
class CriticObsConfig:
    UPSTREAM_TARGETS: ClassVar[tuple[str, ...]] = ("model.common.critic.CriticObs",)

    cond_dim: int
    mlp_dims: tuple[int, ...] = field(default=(256, 256))
    activation_type: str = setting("Mish", check=_ACTIVATION)
    use_layernorm: bool = False
    residual_style: bool = False

    def __post_init__(self) -> None:
        _check_dims(cond_dim=self.cond_dim, mlp_dims=self.mlp_dims)
        if self.residual_style:
            _check_residual_hidden("mlp_dims", self.mlp_dims)
        self.q1()

    def q1(self) -> MLPConfig:
        return MLPConfig(
            (self.cond_dim, *self.mlp_dims, 1),
            self.activation_type,
            "Identity",
            use_layernorm=self.use_layernorm,
            residual_style=self.residual_style,
        )


@dataclass(frozen=True)
class CriticObsActConfig:
    """Upstream CriticObsAct: Q(s, a) of the flattened observation history and the flattened executed
    chunk (action_steps x action_dim), two independent MLPs Q1, Q2 when double_q.

    Upstream spells the residual switch `residual_tyle`; its configs pass `residual_style`, which that
    class swallows unused, so upstream's critics are plain MLPs. Both keys are read with that meaning."""

    cond_dim: int
    mlp_dims: tuple[int, ...] = field(default=(256, 256))
    action_dim: int = 1
    action_steps: int = 1
    activation_type: str = setting("Mish", check=_ACTIVATION)
    use_layernorm: bool = False
    residual_tyle: bool = setting(False, doc="upstream's (misspelt) switch for residual Q networks")
    residual_style: bool = setting(False, doc="accepted and unused, as upstream CriticObsAct (see residual_tyle)")
    double_q: bool = True

    def __post_init__(self) -> None:
        _check_dims(cond_dim=self.cond_dim, mlp_dims=self.mlp_dims, action_dim=self.action_dim,
                    action_steps=self.action_steps)
        if self.residual_tyle:
            _check_residual_hidden("mlp_dims", self.mlp_dims)
        self.q()

    @property
    def input_dim(self) -> int:
        return self.cond_dim + self.action_dim * self.action_steps

    def q(self) -> MLPConfig:
        """Each Q network: (cond_dim + Ta * Da) -> mlp_dims -> 1."""
        return MLPConfig(
            (self.input_dim, *self.mlp_dims, 1),
            self.activation_type,
            "Identity",
            use_layernorm=self.use_layernorm,
            residual_style=self.residual_tyle,
        )

    @property
    def heads(self) -> tuple[str, ...]:
        return ("Q1", "Q2") if self.double_q else ("Q1",)


def diffusion_mlp_spec(cfg: DiffusionMLPConfig, prefix: str = "") -> OrderedDict:
    spec: OrderedDict = OrderedDict()
    _linear(spec, f"{prefix}time_embedding.1", cfg.time_dim, cfg.time_dim * 2)
    _linear(spec, f"{prefix}time_embedding.3", cfg.time_dim * 2, cfg.time_dim)
    cond = cfg.cond_mlp()
    if cond is not None:
        spec.update(mlp_spec(cond, f"{prefix}cond_mlp."))
    spec.update(mlp_spec(cfg.mlp_mean(), f"{prefix}mlp_mean."))
    return spec


def critic_obs_spec(cfg: CriticObsConfig, prefix: str = "") -> OrderedDict:
    return mlp_spec(cfg.q1(), f"{prefix}Q1.")


def critic_obs_act_spec(cfg: CriticObsActConfig, prefix: str = "") -> OrderedDict:
    spec: OrderedDict = OrderedDict()
    for head in cfg.heads:
        spec.update(mlp_spec(cfg.q(), f"{prefix}{head}."))
    return spec


def critic_ensemble_spec(cfg: CriticObsActConfig, n: int, prefix: str = "") -> OrderedDict:
    """n single-head members <prefix>0. ... <prefix>{n-1}. (upstream's critic_networks / target_networks)."""
    member = dataclasses.replace(cfg, double_q=False)
    spec: OrderedDict = OrderedDict()
    for i in range(n):
        spec.update(critic_obs_act_spec(member, f"{prefix}{i}."))
    return spec


@dataclass(frozen=True)
class CondDenoiserConfig:
    """The reward-guided engine's conditional denoiser (core_*/networks/cond_denoiser.py)."""

    context_dim: int
    param_dim: int
    hidden_dim: int = 256
    time_dim: int = 16

    def __post_init__(self) -> None:
        _check_dims(context_dim=self.context_dim, param_dim=self.param_dim, hidden_dim=self.hidden_dim,
                    time_dim=self.time_dim)


def cond_denoiser_spec(cfg: CondDenoiserConfig, prefix: str = "") -> OrderedDict:
    """Canonical names and shapes, in the engine's state-dict order."""
    spec: OrderedDict = OrderedDict()
    h = cfg.hidden_dim
    _linear(spec, f"{prefix}tproj.net.0", cfg.time_dim, h)
    _linear(spec, f"{prefix}tproj.net.2", h, h)
    _linear(spec, f"{prefix}embed_t", 1, cfg.time_dim)
    _linear(spec, f"{prefix}xproj.0", cfg.context_dim, h)
    _linear(spec, f"{prefix}pproj.0", cfg.param_dim, h)
    _linear(spec, f"{prefix}core.0", 3 * h, h)
    _linear(spec, f"{prefix}core.2", h, h)
    _linear(spec, f"{prefix}core.4", h, cfg.param_dim)
    return spec


@dataclass(frozen=True)
class GaussianMLPConfig:
    """Upstream's Gaussian_MLP: a base MLP, then mean and log-variance heads (or one log std)."""

    UPSTREAM_TARGETS: ClassVar[tuple[str, ...]] = ("model.common.mlp_gaussian.Gaussian_MLP",)

    action_dim: int
    horizon_steps: int
    cond_dim: int
    mlp_dims: tuple[int, ...] = (256, 256, 256)
    activation_type: str = setting("Mish", check=_ACTIVATION)
    tanh_output: bool = True
    residual_style: bool = False
    use_layernorm: bool = False
    dropout: float = setting(0.0, doc="dropout after each hidden layer of the mean MLP with a fixed std (training "
                                      "only; upstream ignores it with a learned std, and so does this network)")
    fixed_std: float | None = None
    learn_fixed_std: bool = False
    std_min: float = 0.01
    std_max: float = 1.0

    def __post_init__(self) -> None:
        _check_dims(action_dim=self.action_dim, horizon_steps=self.horizon_steps, cond_dim=self.cond_dim,
                    mlp_dims=self.mlp_dims)
        if not 0.0 <= self.dropout < 1.0:
            raise SettingError("dropout", f"must be in [0, 1), got {self.dropout}")
        if self.fixed_std is not None and not self.fixed_std > 0:
            raise SettingError("fixed_std", f"must be > 0 (or null: a learned std head), got {self.fixed_std}")
        if self.learn_fixed_std and self.fixed_std is None:
            raise SettingError("learn_fixed_std", "needs fixed_std (its initial value)")
        if not self.std_min > 0:
            raise SettingError("std_min", f"must be > 0, got {self.std_min}")
        if not self.std_min <= self.std_max:
            raise SettingError("std_max", f"must be >= std_min={self.std_min}, got {self.std_max}")
        if self.residual_style:  # learned std: the base MLP's output is mlp_dims[-1] wide, heads follow
            _check_residual_hidden("mlp_dims", self.mlp_dims, ends_in_output=self.fixed_std is None)
        self.mlp_base() if self.fixed_std is None else self.mean_only()  # only the MLPs this network builds

    @property
    def output_dim(self) -> int:
        return self.action_dim * self.horizon_steps

    def mlp_base(self) -> MLPConfig:
        return MLPConfig((self.cond_dim, *self.mlp_dims), self.activation_type, self.activation_type,
                         use_layernorm=self.use_layernorm, use_layernorm_final=self.use_layernorm,
                         residual_style=self.residual_style)

    def head(self) -> MLPConfig:
        return MLPConfig((self.mlp_dims[-1], self.output_dim), "Tanh", "Identity")

    def mean_only(self) -> MLPConfig:
        """With a fixed std upstream uses one MLP for the mean, with dropout after each hidden layer (IBRL's
        robomimic configs). A residual one (robomimic's configs) cannot be built by upstream's class at the
        pinned commit: it passes ResidualMLP a `dropout` argument that class does not take. Built here as the
        config describes (dropout inside each residual block, as the diffusion MLP's)."""
        return MLPConfig((self.cond_dim, *self.mlp_dims, self.output_dim), self.activation_type, "Identity",
                         use_layernorm=self.use_layernorm, dropout=self.dropout, residual_style=self.residual_style)


def gaussian_mlp_spec(cfg: GaussianMLPConfig, prefix: str = "") -> OrderedDict:
    spec: OrderedDict = OrderedDict()
    if cfg.fixed_std is None:
        spec.update(mlp_spec(cfg.mlp_base(), f"{prefix}mlp_base."))
        spec.update(mlp_spec(cfg.head(), f"{prefix}mlp_mean."))
        spec.update(mlp_spec(cfg.head(), f"{prefix}mlp_logvar."))
    else:
        spec.update(mlp_spec(cfg.mean_only(), f"{prefix}mlp_mean."))
        if cfg.learn_fixed_std:
            spec[f"{prefix}logvar"] = (cfg.action_dim,)
    return spec
