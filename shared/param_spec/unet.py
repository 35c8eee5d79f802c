"""Unet1D (upstream model/diffusion/unet.py, from Diffusion Policy): a 1-d convolutional U-Net over the action
chunk's time axis, channels = action dims, every residual block FiLM-conditioned on (time embedding, observation).

Layout (dims = [action_dim, dim * m for m in dim_mults], one level per consecutive pair):
  time_mlp       sinusoidal(dsed) -> Linear(dsed, 4 dsed) -> Mish -> Linear(4 dsed, dsed)
  cond_mlp       optional ResidualMLP [cond_dim, *cond_mlp_dims] on the flattened observation history
  down_modules.i two ResidualBlock1D (in -> out, out -> out), then a stride-2 Conv1d (k 3, pad 1) but at the last
  mid_modules    two ResidualBlock1D at the deepest width
  up_modules.i   per level but the first, deepest first: two ResidualBlock1D (2 out -> in, in -> in) on the skip
                 concatenation, then a stride-2 ConvTranspose1d (k 4, pad 1) that doubles the length
  final_conv     Conv1dBlock(dim, dim) then a 1x1 Conv1d to action_dim
A ResidualBlock1D is blocks.0 (Conv1dBlock in -> out), FiLM from cond_encoder (scale and bias per channel with
cond_predict_scale, else a bias), blocks.1 (Conv1dBlock out -> out), plus residual_conv (1x1 Conv1d) when the
width changes. A Conv1dBlock is Conv1d (padding k // 2) -> GroupNorm (when n_groups) -> activation; upstream's
Sequential puts the conv at index 0, the norm at 2 (reshapes between), so its names are block.0 and block.2.
cond_encoder: Linear-act-Linear-act-Linear (indices 0, 2, 4) unless cond_mlp_dims or smaller_encoder, then
act-Linear (index 1). Conv weights are torch's: Conv1d (out, in, k), ConvTranspose1d (in, out, k).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

from shared.config.reader import SettingError, one_of, setting
from shared.param_spec.base import MLPConfig, _check_dims, _check_residual_hidden, _linear, _norm, mlp_spec

BLOCK_ACTIVATIONS = ("Mish", "ReLU")  # upstream's Conv1dBlock and ResidualBlock1D build no other


@dataclass(frozen=True)
class Unet1DConfig:
    """Upstream Unet1D's constructor arguments (its names and defaults; cond_dim is required here)."""

    UPSTREAM_TARGETS: ClassVar[tuple[str, ...]] = ("model.diffusion.unet.Unet1D",)

    action_dim: int
    cond_dim: int
    diffusion_step_embed_dim: int = setting(32, doc="time embedding width (dsed)")
    dim: int = setting(32, doc="channels of the first level")
    dim_mults: tuple[int, ...] = setting((1, 2, 4, 8), doc="channel multiple per level; each level after the "
                                                           "first halves the horizon")
    smaller_encoder: bool = setting(False, doc="FiLM encoder act-Linear instead of three Linear layers")
    cond_mlp_dims: tuple[int, ...] | None = setting(None, doc="residual MLP on the observation before FiLM")
    kernel_size: int = setting(5, doc="convolution width of every Conv1dBlock (odd: padding k // 2 keeps the length)")
    n_groups: int | None = setting(None, doc="GroupNorm groups in every Conv1dBlock (null: no norm)")
    activation_type: str = setting("Mish", check=one_of(*BLOCK_ACTIVATIONS))
    cond_predict_scale: bool = setting(False, doc="FiLM predicts a per-channel scale as well as a bias")
    groupnorm_eps: float = setting(1e-5, doc="GroupNorm's eps (inside the square root)")

    def __post_init__(self) -> None:
        _check_dims(action_dim=self.action_dim, cond_dim=self.cond_dim, dim=self.dim, dim_mults=self.dim_mults,
                    kernel_size=self.kernel_size, n_groups=self.n_groups, cond_mlp_dims=self.cond_mlp_dims)
        if self.diffusion_step_embed_dim < 4 or self.diffusion_step_embed_dim % 2:
            raise SettingError("diffusion_step_embed_dim", "must be an even number >= 4 (the sinusoidal embedding "
                               f"uses half of it, >= 2 frequencies), got {self.diffusion_step_embed_dim}")
        if self.dim_mults[0] != 1:  # final_conv takes `dim` channels, what the first level gives back
            raise SettingError("dim_mults", f"must start with 1 (the last block and final_conv run at dim "
                                            f"channels), got {list(self.dim_mults)}")
        if self.kernel_size % 2 == 0:
            raise SettingError("kernel_size", f"must be odd (padding k // 2 keeps the length), got "
                                              f"{self.kernel_size}")
        if self.n_groups is not None:
            bad = [w for w in self.widths if w % self.n_groups]
            if bad:
                raise SettingError("n_groups", f"must divide every level's channels {list(self.widths)}, "
                                               f"got {self.n_groups}")
        if not self.groupnorm_eps > 0:
            raise SettingError("groupnorm_eps", f"must be > 0, got {self.groupnorm_eps}")
        if self.cond_mlp_dims is not None:  # upstream's ResidualMLP: input, 2 per block, output
            _check_residual_hidden("cond_mlp_dims", self.cond_mlp_dims, ends_in_output=True)
            self.cond_mlp()

    @property
    def widths(self) -> tuple[int, ...]:
        """Channels per level: dim * m."""
        return tuple(self.dim * m for m in self.dim_mults)

    @property
    def levels(self) -> tuple[tuple[int, int], ...]:
        """(in, out) channels of each down level: action_dim first."""
        dims = (self.action_dim, *self.widths)
        return tuple(zip(dims[:-1], dims[1:]))

    @property
    def horizon_multiple(self) -> int:
        """The horizon must be a multiple of this: each level after the first halves it and the way up
        doubles it back onto the skip connection."""
        return 2 ** (len(self.dim_mults) - 1)

    @property
    def global_cond_dim(self) -> int:
        """Width of what every FiLM encoder reads: time embedding, then the (encoded) observation."""
        obs = self.cond_dim if self.cond_mlp_dims is None else self.cond_mlp_dims[-1]
        return self.diffusion_step_embed_dim + obs

    @property
    def large_cond_encoder(self) -> bool:
        return self.cond_mlp_dims is None and not self.smaller_encoder

    def cond_mlp(self) -> MLPConfig | None:
        if self.cond_mlp_dims is None:
            return None
        return MLPConfig((self.cond_dim, *self.cond_mlp_dims), self.activation_type, "Identity",
                         residual_style=True)

    def check_horizon(self, horizon_steps: int, key: str = "horizon_steps") -> None:
        """Refuse a horizon the down/up-sampling cannot bring back onto its skip connections."""
        if horizon_steps % self.horizon_multiple:
            raise SettingError(key, f"must be a multiple of {self.horizon_multiple} for a Unet1D with "
                                    f"{len(self.dim_mults)} levels (dim_mults {list(self.dim_mults)}), got "
                                    f"{horizon_steps}")


def _conv(spec: OrderedDict, name: str, c_in: int, c_out: int, k: int) -> None:
    spec[f"{name}.weight"] = (c_out, c_in, k)
    spec[f"{name}.bias"] = (c_out,)


def _conv_block(spec: OrderedDict, name: str, cfg: Unet1DConfig, c_in: int, c_out: int) -> None:
    _conv(spec, f"{name}.block.0", c_in, c_out, cfg.kernel_size)
    if cfg.n_groups is not None:
        _norm(spec, f"{name}.block.2", c_out)


def _residual_block(spec: OrderedDict, name: str, cfg: Unet1DConfig, c_in: int, c_out: int) -> None:
    _conv_block(spec, f"{name}.blocks.0", cfg, c_in, c_out)
    _conv_block(spec, f"{name}.blocks.1", cfg, c_out, c_out)
    film = 2 * c_out if cfg.cond_predict_scale else c_out
    if cfg.large_cond_encoder:
        _linear(spec, f"{name}.cond_encoder.0", cfg.global_cond_dim, film)
        _linear(spec, f"{name}.cond_encoder.2", film, film)
        _linear(spec, f"{name}.cond_encoder.4", film, film)
    else:
        _linear(spec, f"{name}.cond_encoder.1", cfg.global_cond_dim, film)
    if c_in != c_out:
        _conv(spec, f"{name}.residual_conv", c_in, c_out, 1)


def unet_spec(cfg: Unet1DConfig, prefix: str = "") -> OrderedDict:
    """Canonical names and shapes in upstream's state_dict order."""
    spec: OrderedDict = OrderedDict()
    dsed = cfg.diffusion_step_embed_dim
    _linear(spec, f"{prefix}time_mlp.1", dsed, 4 * dsed)
    _linear(spec, f"{prefix}time_mlp.3", 4 * dsed, dsed)
    cond = cfg.cond_mlp()
    if cond is not None:
        spec.update(mlp_spec(cond, f"{prefix}cond_mlp."))
    mid = cfg.widths[-1]
    for i in range(2):
        _residual_block(spec, f"{prefix}mid_modules.{i}", cfg, mid, mid)
    for i, (c_in, c_out) in enumerate(cfg.levels):
        _residual_block(spec, f"{prefix}down_modules.{i}.0", cfg, c_in, c_out)
        _residual_block(spec, f"{prefix}down_modules.{i}.1", cfg, c_out, c_out)
        if i < len(cfg.levels) - 1:
            _conv(spec, f"{prefix}down_modules.{i}.2.conv", c_out, c_out, 3)
    for i, (c_in, c_out) in enumerate(reversed(cfg.levels[1:])):
        _residual_block(spec, f"{prefix}up_modules.{i}.0", cfg, 2 * c_out, c_in)
        _residual_block(spec, f"{prefix}up_modules.{i}.1", cfg, c_in, c_in)
        spec[f"{prefix}up_modules.{i}.2.conv.weight"] = (c_in, c_in, 4)  # ConvTranspose1d: (in, out, k)
        spec[f"{prefix}up_modules.{i}.2.conv.bias"] = (c_in,)
    _conv_block(spec, f"{prefix}final_conv.0", cfg, cfg.dim, cfg.dim)
    _conv(spec, f"{prefix}final_conv.1", cfg.dim, cfg.action_dim, 1)
    return spec
