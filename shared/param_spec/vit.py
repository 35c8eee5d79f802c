"""The image networks of upstream's robomimic `*_img` configs: the ViT encoder (model/common/vit.py, from IBRL),
the SpatialEmb readout (model/common/modules.py) and the three networks built on them, VisionDiffusionMLP
(model/diffusion/mlp_diffusion.py), Gaussian_VisionMLP (model/common/mlp_gaussian.py) and ViTCritic
(model/common/critic.py).

Layout (E = embed_dim, N = patches, P = proprioception = cond_dim):
  backbone.vit.pos_embed          (1, N, E), a free parameter
  backbone.vit.patch_embed        embed1: conv (Conv2d C -> E, k 8, stride 8)
                                  embed2: embed.0 (Conv2d C -> E, k 8, stride 4), embed.1 GroupNorm(E, E) when
                                  embed_norm, ReLU, embed.3 (Conv2d E -> E, k 3, stride 2); no padding
  backbone.vit.net.i              depth pre-norm layers: layer_norm1, mha.qkv_proj (E -> 3E, columns ordered
                                  (q|k|v, head, d)), mha.out_proj, layer_norm2, linear1 (E -> 4E), exact GELU,
                                  linear2 (4E -> E); each branch added back
  backbone.vit.norm               final LayerNorm (eps 1e-5 everywhere)
  compress (compress1, compress2 with num_img 2)
                                  SpatialEmb: weight (1, E, proj), input_proj.0 Linear(N + P, proj),
                                  input_proj.1 LayerNorm(proj), ReLU, dropout; or (spatial_emb 0) compress.0
                                  Linear(N E, visual_feature_dim), compress.1 LayerNorm, dropout, ReLU
then each network's own head (time embedding + MLP, Gaussian heads, Q1), named as upstream's state_dict.

Torch lists a module's own parameters before its children's, so `weight` precedes `input_proj` and `pos_embed`
precedes `patch_embed`; ViTCritic's Q1 (built by CriticObs's constructor) precedes its backbone; the specs keep
upstream's order. Gaussian_VisionMLP's clamp constants `logvar_min`/`logvar_max` are not canonical parameters
(as for Gaussian_MLP).

Initialisation (`vision_init`): torch's defaults everywhere but where upstream draws its own: inside the ViT every
Linear weight (qkv, out_proj, linear1, linear2) and pos_embed ~ N(0, 0.02) truncated to [-2, 2] (timm's rule,
absolute bounds: at std 0.02 the truncation never acts), those biases 0; SpatialEmb's weight ~ N(0, 1); a learned
fixed std's log-variance log(fixed_std^2). Convolutions keep torch's default (upstream's init skips them).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from shared.config.reader import SettingError, one_of, setting
from shared.param_spec.base import (
    _ACTIVATION,
    MLPConfig,
    _check_dims,
    _check_residual_hidden,
    _linear,
    _norm,
    mlp_spec,
    torch_default_init,
)

FF_MULT = 4  # the ViT layer's feed-forward width, in embed_dims
LAYER_NORM_EPS = 1e-5
GROUP_NORM_EPS = 1e-5
INIT_STD = 0.02  # trunc_normal_ std of pos_embed and the ViT's Linear weights
TRUNC_BOUND = 2.0  # trunc_normal_'s default bounds (absolute, not in stds)
PIXEL_SCALE = 255.0  # VitEncoder's input: pixels in [0, 255], mapped to x / 255 - 0.5
EMBED_STYLES = ("embed1", "embed2")
MAX_IMAGES = 2  # upstream's networks read cameras rgb[:, 0] and rgb[:, 1] only


@dataclass(frozen=True)
class VitSettings:
    """Upstream's VitEncoderConfig (the backbone's `cfg` section)."""

    patch_size: int = setting(8, doc="accepted and unused, as upstream (each patch embedding fixes its kernels)")
    depth: int = setting(1, doc="transformer layers")
    embed_dim: int = setting(128, doc="token width E")
    num_heads: int = setting(4, doc="attention heads (must divide embed_dim)")
    embed_style: str = setting("embed2", check=one_of(*EMBED_STYLES),
                               doc="embed1: one 8x8 stride-8 conv; embed2: 8x8 stride 4, ReLU, 3x3 stride 2")
    embed_norm: int = setting(0, doc="embed2 only: GroupNorm(E, E) after the first conv when nonzero")
    stride: int = setting(-1, doc="accepted and unused, as upstream")

    def __post_init__(self) -> None:
        _check_dims(patch_size=self.patch_size, depth=self.depth, embed_dim=self.embed_dim,
                    num_heads=self.num_heads)
        if self.embed_dim % self.num_heads:
            raise SettingError("num_heads", f"must divide embed_dim={self.embed_dim}, got {self.num_heads}")


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


@dataclass(frozen=True)
class VitEncoderConfig:
    """Upstream VitEncoder's constructor arguments (`backbone` of an image network)."""

    UPSTREAM_TARGETS: ClassVar[tuple[str, ...]] = ("model.common.vit.VitEncoder",)

    obs_shape: tuple[int, ...] = setting(doc="accepted as upstream (stored, unused: num_channel, img_h and img_w "
                                             "size the network)")
    cfg: VitSettings = setting(VitSettings(), doc="the ViT's own settings (upstream's VitEncoderConfig)")
    num_channel: int = setting(3, doc="input channels: 3 x img_cond_steps (frames stacked on channels)")
    img_h: int = setting(96, doc="image height in pixels")
    img_w: int = setting(96, doc="image width in pixels")

    def __post_init__(self) -> None:
        _check_dims(obs_shape=self.obs_shape, num_channel=self.num_channel, img_h=self.img_h, img_w=self.img_w)
        for key, size in (("img_h", self.img_h), ("img_w", self.img_w)):
            if self.cfg.embed_style == "embed1" and size % 8:
                raise SettingError(key, f"must be a multiple of 8 for embed1 (8x8 patches, stride 8), got {size}")
            if self.cfg.embed_style == "embed2":
                first = _conv_out(size, 8, 4)
                if size < 16 or (size - 8) % 4 or (first - 3) % 2:
                    raise SettingError(key, f"must be 16 + 8 k for embed2 (its 8x8 stride-4 and 3x3 stride-2 "
                                            f"convolutions cover the image exactly, else upstream's position "
                                            f"embedding does not match the patches), got {size}")

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per column and row."""
        if self.cfg.embed_style == "embed1":
            return self.img_h // 8, self.img_w // 8
        return (_conv_out(_conv_out(self.img_h, 8, 4), 3, 2), _conv_out(_conv_out(self.img_w, 8, 4), 3, 2))

    @property
    def num_patch(self) -> int:
        h, w = self.grid
        return h * w

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    @property
    def repr_dim(self) -> int:
        return self.num_patch * self.cfg.embed_dim


def vit_encoder_spec(cfg: VitEncoderConfig, prefix: str = "") -> OrderedDict:
    """backbone.* names in upstream's state_dict order (prefix ends in 'backbone.')."""
    spec: OrderedDict = OrderedDict()
    E, C, v = cfg.cfg.embed_dim, cfg.num_channel, f"{prefix}vit."
    spec[f"{v}pos_embed"] = (1, cfg.num_patch, E)
    if cfg.cfg.embed_style == "embed1":
        spec[f"{v}patch_embed.conv.weight"] = (E, C, 8, 8)
        spec[f"{v}patch_embed.conv.bias"] = (E,)
    else:
        spec[f"{v}patch_embed.embed.0.weight"] = (E, C, 8, 8)
        spec[f"{v}patch_embed.embed.0.bias"] = (E,)
        if cfg.cfg.embed_norm:
            _norm(spec, f"{v}patch_embed.embed.1", E)
        spec[f"{v}patch_embed.embed.3.weight"] = (E, E, 3, 3)
        spec[f"{v}patch_embed.embed.3.bias"] = (E,)
    for i in range(cfg.cfg.depth):
        layer = f"{v}net.{i}"
        _norm(spec, f"{layer}.layer_norm1", E)
        _linear(spec, f"{layer}.mha.qkv_proj", E, 3 * E)
        _linear(spec, f"{layer}.mha.out_proj", E, E)
        _norm(spec, f"{layer}.layer_norm2", E)
        _linear(spec, f"{layer}.linear1", E, FF_MULT * E)
        _linear(spec, f"{layer}.linear2", FF_MULT * E, E)
    _norm(spec, f"{v}norm", E)
    return spec


def spatial_emb_spec(num_patch: int, patch_dim: int, prop_dim: int, proj_dim: int, prefix: str) -> OrderedDict:
    """SpatialEmb(num_patch, patch_dim, prop_dim, proj_dim): its own weight first, then input_proj."""
    spec: OrderedDict = OrderedDict()
    spec[f"{prefix}weight"] = (1, patch_dim, proj_dim)
    _linear(spec, f"{prefix}input_proj.0", num_patch + prop_dim, proj_dim)
    _norm(spec, f"{prefix}input_proj.1", proj_dim)
    return spec


@dataclass(frozen=True, kw_only=True)
class _VisionConfig:
    """What the three image networks share: the backbone and the image readout."""

    backbone: VitEncoderConfig = setting(doc="the image encoder (upstream's model.common.vit.VitEncoder)")
    cond_dim: int = setting(doc="proprioception width: obs_dim x cond_steps")
    img_cond_steps: int = setting(1, doc="most recent frames the network reads, stacked on channels")
    spatial_emb: int = setting(0, doc="SpatialEmb's projection width (0: flatten, Linear, LayerNorm, ReLU)")
    visual_feature_dim: int = setting(128, doc="the flattened readout's width (spatial_emb 0 only)")
    dropout: float = setting(0.0, doc="dropout of the image readout (training only)")
    num_img: int = setting(1, doc="cameras (1 or 2): each has its own readout, the backbone is shared")
    augment: bool = setting(False, doc="random shifts (pad 4) of each camera's stacked frames; the caller "
                                       "draws them (shared/data/random_shifts.py)")

    def _check_vision(self, readout_required: bool) -> None:
        _check_dims(cond_dim=self.cond_dim, img_cond_steps=self.img_cond_steps, num_img=self.num_img,
                    visual_feature_dim=self.visual_feature_dim)
        if self.backbone.num_channel != 3 * self.img_cond_steps:
            raise SettingError("backbone.num_channel", f"must be 3 x img_cond_steps = {3 * self.img_cond_steps} "
                                                       f"(RGB frames stacked on channels), got "
                                                       f"{self.backbone.num_channel}")
        if self.num_img > MAX_IMAGES:
            raise SettingError("num_img", f"must be 1 or 2 (upstream's networks read two cameras at most), got "
                                          f"{self.num_img}")
        if self.spatial_emb < 0 or (self.spatial_emb == 1 and not readout_required):
            raise SettingError("spatial_emb", f"must be 0 (no SpatialEmb) or > 1, got {self.spatial_emb}")
        if readout_required and self.spatial_emb < 1:
            raise SettingError("spatial_emb", f"must be > 0 (ViTCritic always reads out with SpatialEmb), got "
                                              f"{self.spatial_emb}")
        if self.num_img > 1 and self.spatial_emb == 0:
            raise SettingError("spatial_emb", "must be > 1 with num_img 2 (upstream reads each camera out with its "
                                              "own SpatialEmb)")
        if not 0.0 <= self.dropout < 1.0:
            raise SettingError("dropout", f"must be in [0, 1), got {self.dropout}")
        if self.augment and self.backbone.img_h != self.backbone.img_w:
            raise SettingError("augment", f"needs square images (upstream's RandomShiftsAug), got "
                                          f"{self.backbone.img_h}x{self.backbone.img_w}")

    @property
    def uses_spatial_emb(self) -> bool:
        return self.spatial_emb > 0

    @property
    def compress_names(self) -> tuple[str, ...]:
        """The readout modules: one per camera."""
        return ("compress1", "compress2") if self.num_img > 1 else ("compress",)

    @property
    def feature_dim(self) -> int:
        """Width of the image features the head reads before the proprioception."""
        return self.spatial_emb * self.num_img if self.uses_spatial_emb else self.visual_feature_dim

    def vision_spec(self, prefix: str) -> OrderedDict:
        """backbone.* then the readout(s)."""
        spec = vit_encoder_spec(self.backbone, f"{prefix}backbone.")
        for name in self.compress_names:
            spec.update(self.readout_spec(f"{prefix}{name}."))
        return spec

    def readout_spec(self, prefix: str) -> OrderedDict:
        if self.uses_spatial_emb:
            return spatial_emb_spec(self.backbone.num_patch, self.backbone.embed_dim, self.cond_dim,
                                    self.spatial_emb, prefix)
        spec: OrderedDict = OrderedDict()
        _linear(spec, f"{prefix}0", self.backbone.repr_dim, self.visual_feature_dim)
        _norm(spec, f"{prefix}1", self.visual_feature_dim)
        return spec


@dataclass(frozen=True, kw_only=True)
class VisionDiffusionMLPConfig(_VisionConfig):
    """Upstream VisionDiffusionMLP's arguments: (noisy chunk, time embedding, image features, proprioception)
    through one MLP."""

    UPSTREAM_TARGETS: ClassVar[tuple[str, ...]] = ("model.diffusion.mlp_diffusion.VisionDiffusionMLP",)

    action_dim: int = setting()
    horizon_steps: int = setting()
    time_dim: int = 16
    mlp_dims: tuple[int, ...] = (256, 256)
    activation_type: str = setting("Mish", check=_ACTIVATION)
    out_activation_type: str = setting("Identity", check=_ACTIVATION)
    use_layernorm: bool = False
    residual_style: bool = False

    def __post_init__(self) -> None:
        self._check_vision(readout_required=False)
        _check_dims(action_dim=self.action_dim, horizon_steps=self.horizon_steps, mlp_dims=self.mlp_dims)
        if self.time_dim < 4 or self.time_dim % 2:
            raise SettingError("time_dim", "must be an even number >= 4 (the sinusoidal time embedding uses "
                                           f"time_dim / 2 >= 2 frequencies), got {self.time_dim}")
        if self.residual_style:
            _check_residual_hidden("mlp_dims", self.mlp_dims)
        self.mlp_mean()

    @property
    def output_dim(self) -> int:
        return self.action_dim * self.horizon_steps

    def mlp_mean(self) -> MLPConfig:
        input_dim = self.time_dim + self.output_dim + self.feature_dim + self.cond_dim
        return MLPConfig((input_dim, *self.mlp_dims, self.output_dim), self.activation_type,
                         self.out_activation_type, use_layernorm=self.use_layernorm,
                         residual_style=self.residual_style)


def vision_diffusion_mlp_spec(cfg: VisionDiffusionMLPConfig, prefix: str = "") -> OrderedDict:
    spec = cfg.vision_spec(prefix)
    _linear(spec, f"{prefix}time_embedding.1", cfg.time_dim, cfg.time_dim * 2)
    _linear(spec, f"{prefix}time_embedding.3", cfg.time_dim * 2, cfg.time_dim)
    spec.update(mlp_spec(cfg.mlp_mean(), f"{prefix}mlp_mean."))
    return spec


@dataclass(frozen=True, kw_only=True)
class GaussianVisionMLPConfig(_VisionConfig):
    """Upstream Gaussian_VisionMLP's arguments: tanh-squashed means and stds of an action chunk from image
    features and proprioception."""

    UPSTREAM_TARGETS: ClassVar[tuple[str, ...]] = ("model.common.mlp_gaussian.Gaussian_VisionMLP",)

    action_dim: int = setting()
    horizon_steps: int = setting()
    mlp_dims: tuple[int, ...] = (256, 256, 256)
    activation_type: str = setting("Mish", check=_ACTIVATION)
    residual_style: bool = False
    use_layernorm: bool = False
    fixed_std: float | None = setting(None, doc="a fixed std (null: a learned log-variance head)")
    learn_fixed_std: bool = setting(False, doc="a learned log-variance per action dim, from fixed_std")
    std_min: float = 0.01
    std_max: float = 1.0

    def __post_init__(self) -> None:
        self._check_vision(readout_required=False)
        _check_dims(action_dim=self.action_dim, horizon_steps=self.horizon_steps, mlp_dims=self.mlp_dims)
        if self.fixed_std is not None and not self.fixed_std > 0:
            raise SettingError("fixed_std", f"must be > 0 (or null: a learned std head), got {self.fixed_std}")
        if self.learn_fixed_std and self.fixed_std is None:
            raise SettingError("learn_fixed_std", "needs fixed_std (its initial value)")
        if not 0 < self.std_min <= self.std_max:
            raise SettingError("std_max", f"must be >= std_min={self.std_min} > 0, got {self.std_max}")
        if self.residual_style:
            _check_residual_hidden("mlp_dims", self.mlp_dims)
        self.mlp_mean()

    @property
    def output_dim(self) -> int:
        return self.action_dim * self.horizon_steps

    @property
    def input_dim(self) -> int:
        return self.feature_dim + self.cond_dim

    @property
    def logvar_bounds(self) -> tuple[float, float]:
        return math.log(self.std_min**2), math.log(self.std_max**2)

    def mlp_mean(self) -> MLPConfig:
        return MLPConfig((self.input_dim, *self.mlp_dims, self.output_dim), self.activation_type, "Identity",
                         use_layernorm=self.use_layernorm, residual_style=self.residual_style)

    def mlp_logvar(self) -> MLPConfig:
        """The learned std's head (fixed_std null): a plain MLP through the last hidden width."""
        return MLPConfig((self.input_dim, self.mlp_dims[-1], self.output_dim), self.activation_type, "Identity",
                         use_layernorm=self.use_layernorm)


def gaussian_vision_mlp_spec(cfg: GaussianVisionMLPConfig, prefix: str = "") -> OrderedDict:
    spec: OrderedDict = OrderedDict()
    if cfg.learn_fixed_std:
        spec[f"{prefix}logvar"] = (cfg.action_dim,)
    spec.update(cfg.vision_spec(prefix))
    spec.update(mlp_spec(cfg.mlp_mean(), f"{prefix}mlp_mean."))
    if cfg.fixed_std is None:
        spec.update(mlp_spec(cfg.mlp_logvar(), f"{prefix}mlp_logvar."))
    return spec


@dataclass(frozen=True, kw_only=True)
class ViTCriticConfig(_VisionConfig):
    """Upstream ViTCritic's arguments: V(s) from image features (always SpatialEmb) and proprioception."""

    UPSTREAM_TARGETS: ClassVar[tuple[str, ...]] = ("model.common.critic.ViTCritic",)

    spatial_emb: int = setting(128, doc="SpatialEmb's projection width")
    mlp_dims: tuple[int, ...] = setting((256, 256), doc="Q1's hidden widths")
    activation_type: str = setting("Mish", check=_ACTIVATION)
    use_layernorm: bool = False
    residual_style: bool = False

    def __post_init__(self) -> None:
        self._check_vision(readout_required=True)
        _check_dims(mlp_dims=self.mlp_dims)
        if self.residual_style:
            _check_residual_hidden("mlp_dims", self.mlp_dims)
        self.q1()

    def q1(self) -> MLPConfig:
        return MLPConfig((self.feature_dim + self.cond_dim, *self.mlp_dims, 1), self.activation_type, "Identity",
                         use_layernorm=self.use_layernorm, residual_style=self.residual_style)


def vit_critic_spec(cfg: ViTCriticConfig, prefix: str = "") -> OrderedDict:
    spec = mlp_spec(cfg.q1(), f"{prefix}Q1.")
    spec.update(cfg.vision_spec(prefix))
    return spec


VisionConfig = VisionDiffusionMLPConfig | GaussianVisionMLPConfig | ViTCriticConfig
IMAGE_NETWORK_CONFIGS = (VisionDiffusionMLPConfig, GaussianVisionMLPConfig, ViTCriticConfig)
_SPECS = {VisionDiffusionMLPConfig: vision_diffusion_mlp_spec, GaussianVisionMLPConfig: gaussian_vision_mlp_spec,
          ViTCriticConfig: vit_critic_spec}


def vision_init(cfg: VisionConfig, seed: int, prefix: str = "") -> OrderedDict:
    """Canonical float32 initial parameters as upstream draws them (module docstring), in numpy from `seed`:
    torch's defaults from one stream, then the ViT's and SpatialEmb's own draws from a second."""
    params = torch_default_init(_SPECS[type(cfg)](cfg, prefix), seed)
    rng = np.random.default_rng([seed, 1])
    vit = f"{prefix}backbone.vit."
    for name, value in params.items():
        local = name[len(prefix):]
        if name.startswith(vit) and (local.endswith("pos_embed") or (value.ndim == 2 and ".net." in name)):
            params[name] = np.clip(rng.normal(0.0, INIT_STD, value.shape), -TRUNC_BOUND, TRUNC_BOUND
                                   ).astype(np.float32)  # pos_embed, qkv/out_proj/linear1/linear2 weights
        elif name.startswith(vit) and ".net." in name and name.endswith(".bias") and \
                params[name[:-len("bias")] + "weight"].ndim == 2:  # those Linears' biases
            params[name] = np.zeros(value.shape, np.float32)
        elif local.split(".")[0].startswith("compress") and local.endswith(".weight") and value.ndim == 3:
            params[name] = rng.standard_normal(value.shape).astype(np.float32)  # SpatialEmb's weight
        elif local == "logvar":
            params[name] = np.full(value.shape, math.log(cfg.fixed_std**2), np.float32)
    return params

