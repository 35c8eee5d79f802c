"""Upstream's transformer policies (model/common/transformer.py): Gaussian_Transformer and GMM_Transformer.

Both are one `Transformer` (a decoder over learned horizon positions, attending to the embedded observation)
with a linear head; the Gaussian reads means (and log-variances) from the head, the mixture reads
`num_modes` means per step and its mode logits from `modes_head` on the flattened pre-head features.

Upstream fixes what its configs never change: one observation token (T_cond = 1), no encoder layers (the
observation embedding goes through Linear(E, 4E), Mish, Linear(4E, E)), no causal masks, 4E-wide
feed-forward, pre-norm decoder layers (norm_first) with LayerNorm eps 1e-5 and no final decoder norm.

Initialisation (upstream's Transformer._init_weights, applied to the Transformer only): every Linear weight,
attention in_proj_weight and both position embeddings ~ N(0, 0.02), their biases 0, LayerNorms 1 / 0;
GMM_Transformer's modes_head sits outside it and keeps torch's Linear default; a learned fixed std starts at
log(fixed_std^2). Upstream's logvar_min / logvar_max are constants (not learned): not canonical parameters.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from shared.config.reader import SettingError, one_of, setting
from shared.param_spec.base import _check_dims, _linear, _norm

TRANSFORMER_ACTIVATIONS = ("gelu", "relu")  # what torch's decoder layer takes by name (gelu: the exact erf form)
INIT_STD = 0.02  # upstream's normal init of weights and position embeddings
LAYER_NORM_EPS = 1e-5
FF_MULT = 4  # feed-forward width and the observation encoder's hidden width, in units of the embedding


def _check_common(cfg: GaussianTransformerConfig | GMMTransformerConfig) -> None:
    _check_dims(action_dim=cfg.action_dim, horizon_steps=cfg.horizon_steps, cond_dim=cfg.cond_dim,
                transformer_embed_dim=cfg.transformer_embed_dim, transformer_num_heads=cfg.transformer_num_heads,
                transformer_num_layers=cfg.transformer_num_layers)
    if cfg.transformer_embed_dim % cfg.transformer_num_heads:
        raise SettingError("transformer_embed_dim", f"must be divisible by transformer_num_heads="
                                                    f"{cfg.transformer_num_heads}, got {cfg.transformer_embed_dim}")
    if cfg.transformer_activation not in TRANSFORMER_ACTIVATIONS:
        raise SettingError("transformer_activation", f"must be one of {', '.join(TRANSFORMER_ACTIVATIONS)}, "
                                                     f"got {cfg.transformer_activation!r}")
    for key in ("p_drop_emb", "p_drop_attn"):
        if not 0.0 <= getattr(cfg, key) < 1.0:
            raise SettingError(key, f"must be in [0, 1), got {getattr(cfg, key)}")
    if cfg.fixed_std is not None and not cfg.fixed_std > 0:
        raise SettingError("fixed_std", f"must be > 0 (or null: a learned std), got {cfg.fixed_std}")
    if cfg.learn_fixed_std and cfg.fixed_std is None:
        raise SettingError("learn_fixed_std", "needs fixed_std (its initial value)")
    if not cfg.std_min > 0:
        raise SettingError("std_min", f"must be > 0, got {cfg.std_min}")
    if not cfg.std_min <= cfg.std_max:
        raise SettingError("std_max", f"must be >= std_min={cfg.std_min}, got {cfg.std_max}")


_ACT = one_of(*TRANSFORMER_ACTIVATIONS)


@dataclass(frozen=True)
class GaussianTransformerConfig:
    """Upstream's Gaussian_Transformer: means tanh(head[..., :Da]); std fixed, learned per action dim
    (learn_fixed_std) or read from head[..., Da:] (fixed_std null), log-variance clamped to [std_min^2, std_max^2]."""

    UPSTREAM_TARGETS: ClassVar[tuple[str, ...]] = ("model.common.transformer.Gaussian_Transformer",)

    action_dim: int
    horizon_steps: int
    cond_dim: int
    transformer_embed_dim: int = setting(256, doc="the transformer's token width E (feed-forward 4E)")
    transformer_num_heads: int = setting(8, doc="attention heads per layer (E must divide by it)")
    transformer_num_layers: int = setting(6, doc="pre-norm decoder layers")
    transformer_activation: str = setting("gelu", check=_ACT, doc="the decoder's feed-forward activation")
    p_drop_emb: float = setting(0.0, doc="dropout of the embeddings (training only)")
    p_drop_attn: float = setting(0.0, doc="dropout in the decoder layers: attention weights, residual branches, "
                                          "feed-forward (training only)")
    fixed_std: float | None = None
    learn_fixed_std: bool = False
    std_min: float = 0.01
    std_max: float = 1.0

    def __post_init__(self) -> None:
        _check_common(self)

    @property
    def output_dim(self) -> int:
        return self.action_dim * self.horizon_steps

    @property
    def head_dim(self) -> int:
        """The Transformer head's width per step: means, and log-variances when the std is learned."""
        return self.action_dim * (2 if self.fixed_std is None else 1)


@dataclass(frozen=True)
class GMMTransformerConfig:
    """Upstream's GMM_Transformer: per step num_modes means from the head (modes, then action dims), mode logits
    from modes_head on the flattened pre-head features; std fixed or learned per (mode, action dim)."""

    UPSTREAM_TARGETS: ClassVar[tuple[str, ...]] = ("model.common.transformer.GMM_Transformer",)

    action_dim: int
    horizon_steps: int
    cond_dim: int
    num_modes: int = setting(5, doc="mixture components M")
    transformer_embed_dim: int = setting(256, doc="the transformer's token width E (feed-forward 4E)")
    transformer_num_heads: int = setting(8, doc="attention heads per layer (E must divide by it)")
    transformer_num_layers: int = setting(6, doc="pre-norm decoder layers")
    transformer_activation: str = setting("gelu", check=_ACT, doc="the decoder's feed-forward activation")
    p_drop_emb: float = setting(0.0, doc="dropout of the embeddings (training only)")
    p_drop_attn: float = setting(0.0, doc="dropout in the decoder layers: attention weights, residual branches, "
                                          "feed-forward (training only)")
    fixed_std: float | None = None
    learn_fixed_std: bool = False
    std_min: float = 0.01
    std_max: float = 1.0

    def __post_init__(self) -> None:
        _check_dims(num_modes=self.num_modes)
        _check_common(self)
        if self.fixed_std is None:
            # upstream slices the log-variances as out[..., M*Da : -M], M*Da - M columns, and fails reshaping them
            raise SettingError("fixed_std", "must be set for GMM_Transformer: upstream's learned-std branch cannot "
                                            "run (its log-variance slice is num_modes columns short)")

    @property
    def output_dim(self) -> int:
        return self.action_dim * self.horizon_steps

    @property
    def head_dim(self) -> int:
        return self.action_dim * self.num_modes


TransformerConfig = GaussianTransformerConfig | GMMTransformerConfig


def _mha_spec(spec: OrderedDict, name: str, dim: int) -> None:
    """torch.nn.MultiheadAttention's parameters: in_proj_weight (3E, E) = [W_q; W_k; W_v], in_proj_bias, out_proj."""
    spec[f"{name}.in_proj_weight"] = (3 * dim, dim)
    spec[f"{name}.in_proj_bias"] = (3 * dim,)
    _linear(spec, f"{name}.out_proj", dim, dim)


def transformer_core_spec(cfg: TransformerConfig, prefix: str = "") -> OrderedDict:
    """Upstream's Transformer (the `transformer.` part of both policies), in its state_dict order."""
    spec: OrderedDict = OrderedDict()
    E = cfg.transformer_embed_dim
    spec[f"{prefix}cond_pos_emb"] = (1, 1, E)
    spec[f"{prefix}pos_emb"] = (1, cfg.horizon_steps, E)
    _linear(spec, f"{prefix}cond_obs_emb", cfg.cond_dim, E)
    _linear(spec, f"{prefix}encoder.0", E, FF_MULT * E)
    _linear(spec, f"{prefix}encoder.2", FF_MULT * E, E)
    for i in range(cfg.transformer_num_layers):
        layer = f"{prefix}decoder.layers.{i}"
        _mha_spec(spec, f"{layer}.self_attn", E)
        _mha_spec(spec, f"{layer}.multihead_attn", E)
        _linear(spec, f"{layer}.linear1", E, FF_MULT * E)
        _linear(spec, f"{layer}.linear2", FF_MULT * E, E)
        for n in (1, 2, 3):
            _norm(spec, f"{layer}.norm{n}", E)
    _norm(spec, f"{prefix}ln_f", E)
    _linear(spec, f"{prefix}head", E, cfg.head_dim)
    return spec


def gaussian_transformer_spec(cfg: GaussianTransformerConfig, prefix: str = "") -> OrderedDict:
    spec: OrderedDict = OrderedDict()
    if cfg.learn_fixed_std:
        spec[f"{prefix}logvar"] = (cfg.action_dim,)
    spec.update(transformer_core_spec(cfg, f"{prefix}transformer."))
    return spec


def gmm_transformer_spec(cfg: GMMTransformerConfig, prefix: str = "") -> OrderedDict:
    spec: OrderedDict = OrderedDict()
    if cfg.learn_fixed_std:
        spec[f"{prefix}logvar"] = (cfg.num_modes * cfg.action_dim,)
    spec.update(transformer_core_spec(cfg, f"{prefix}transformer."))
    _linear(spec, f"{prefix}modes_head", cfg.horizon_steps * cfg.transformer_embed_dim, cfg.num_modes)
    return spec


def transformer_init(cfg: TransformerConfig, seed: int, prefix: str = "") -> OrderedDict:
    """Canonical float32 initial parameters of either policy, drawn in numpy as upstream initialises them
    (module docstring), in spec order from one generator seeded by `seed`."""
    spec = gaussian_transformer_spec(cfg, prefix) if isinstance(cfg, GaussianTransformerConfig) \
        else gmm_transformer_spec(cfg, prefix)
    rng = np.random.default_rng(seed)
    params: OrderedDict = OrderedDict()
    for name, shape in spec.items():
        local = name[len(prefix):]
        if local == "logvar":
            value = np.full(shape, math.log(cfg.fixed_std**2))
        elif local.startswith("modes_head."):  # torch's Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            bound = 1.0 / math.sqrt(spec[f"{prefix}modes_head.weight"][1])
            value = rng.uniform(-bound, bound, size=shape)
        elif local.endswith("bias"):  # Linear, attention and LayerNorm biases
            value = np.zeros(shape)
        elif len(shape) == 1:  # a LayerNorm scale
            value = np.ones(shape)
        else:  # Linear and in_proj weights, position embeddings
            value = rng.normal(0.0, INIT_STD, size=shape)
        params[name] = value.astype(np.float32)
    return params
