"""Reusable hypothesis strategies for architectures, batches and inputs (the one place they live)."""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from shared.param_spec import (
    ACTIVATIONS,
    CriticObsActConfig,
    CriticObsConfig,
    DiffusionMLPConfig,
    GaussianMLPConfig,
    MLPConfig,
)
from shared.param_spec.gmm_mlp import GMMMLPConfig
from shared.param_spec.transformer import TRANSFORMER_ACTIVATIONS, GaussianTransformerConfig, GMMTransformerConfig
from shared.param_spec.unet import BLOCK_ACTIVATIONS, Unet1DConfig
from shared.param_spec.vit import (
    EMBED_STYLES,
    GaussianVisionMLPConfig,
    VisionDiffusionMLPConfig,
    ViTCriticConfig,
    VitEncoderConfig,
    VitSettings,
)
from shared.settings import DiffusionConfig

activations = st.sampled_from(ACTIVATIONS)
widths = st.integers(min_value=3, max_value=24)  # LayerNorm over < 3 features has zero true gradient
batch_sizes = st.integers(min_value=1, max_value=9)
seeds = st.integers(min_value=0, max_value=2**31 - 1)


def examples(share: float, floor: int) -> settings:
    """Hypothesis settings with `share` of the active profile's examples, at least `floor`: an expensive test
    (a traced probe, a whole agent) runs fewer examples than a cheap one, and scales with the profile
    (ci: derandomized and short; big: HYPOTHESIS_PROFILE=big for the long run)."""
    return settings(max_examples=max(floor, round(settings.default.max_examples * share)))


@st.composite
def hidden_dims(draw: st.DrawFn, residual: bool) -> tuple[int, ...]:
    if residual:
        blocks = draw(st.integers(min_value=0, max_value=2))
        return (draw(widths),) * (1 + 2 * blocks)
    return tuple(draw(st.lists(widths, min_size=0, max_size=3)))


@st.composite
def mlp_configs(draw: st.DrawFn) -> MLPConfig:
    residual = draw(st.booleans())
    dims = (draw(widths), *draw(hidden_dims(residual)), draw(widths))
    return MLPConfig(
        dims,
        activation_type=draw(activations),
        out_activation_type=draw(activations),
        use_layernorm=draw(st.booleans()),
        use_layernorm_final=draw(st.booleans()),
        residual_style=residual,
    )


@st.composite
def diffusion_mlp_configs(draw: st.DrawFn) -> DiffusionMLPConfig:
    residual = draw(st.booleans())
    hidden = draw(hidden_dims(residual))
    if not hidden:
        hidden = (draw(widths),)
    return DiffusionMLPConfig(
        action_dim=draw(st.integers(1, 4)),
        horizon_steps=draw(st.integers(1, 4)),
        cond_dim=draw(st.integers(1, 12)),
        time_dim=draw(st.sampled_from([4, 8, 16])),
        mlp_dims=hidden,
        cond_mlp_dims=draw(st.none() | st.lists(widths, min_size=1, max_size=2).map(tuple)),
        activation_type=draw(activations),
        out_activation_type=draw(activations),
        use_layernorm=draw(st.booleans()),
        residual_style=residual,
    )


@st.composite
def gaussian_mlp_configs(draw: st.DrawFn) -> GaussianMLPConfig:
    """Gaussian_MLP with a learned std head, a fixed std, or a learned fixed std."""
    std = draw(st.sampled_from(["head", "fixed", "learned_fixed"]))
    residual = draw(st.booleans())
    hidden = (draw(widths),) * (1 + 2 * draw(st.integers(0, 1))) if residual else draw(hidden_dims(False))
    # a residual MLP's hidden widths: all of mlp_dims with a fixed std; all but the base's output with a head
    return GaussianMLPConfig(
        action_dim=draw(st.integers(1, 4)),
        horizon_steps=draw(st.integers(1, 4)),
        cond_dim=draw(st.integers(1, 12)),
        mlp_dims=(*hidden, draw(widths)) if std == "head" or not hidden else hidden,
        activation_type=draw(activations),
        residual_style=residual,
        fixed_std=None if std == "head" else draw(st.floats(0.05, 1.0)),
        learn_fixed_std=std == "learned_fixed",
    )


@st.composite
def unet_configs(draw: st.DrawFn) -> Unet1DConfig:
    """Small Unet1Ds over every option upstream has: 1 to 3 levels, FiLM scale or bias only, the large or small
    FiLM encoder or a cond_mlp, GroupNorm (any group count dividing the widths) or none, Mish or ReLU."""
    dim = draw(st.sampled_from([2, 4, 6]))
    cond_mlp = draw(st.booleans())
    width = draw(widths)
    return Unet1DConfig(
        action_dim=draw(st.integers(1, 3)),
        cond_dim=draw(st.integers(1, 8)),
        diffusion_step_embed_dim=draw(st.sampled_from([4, 8])),
        dim=dim,
        dim_mults=draw(st.sampled_from([(1,), (1, 2), (1, 2, 4), (1, 3)])),
        smaller_encoder=draw(st.booleans()),
        cond_mlp_dims=(*(width,) * (1 + 2 * draw(st.integers(0, 1))), draw(widths)) if cond_mlp else None,
        kernel_size=draw(st.sampled_from([1, 3, 5])),
        n_groups=draw(st.none() | st.sampled_from([d for d in range(1, dim + 1) if dim % d == 0])),
        activation_type=draw(st.sampled_from(BLOCK_ACTIVATIONS)),
        cond_predict_scale=draw(st.booleans()),
        groupnorm_eps=draw(st.sampled_from([1e-5, 1e-4])),
    )


def unet_horizons(cfg: Unet1DConfig) -> st.SearchStrategy[int]:
    """Horizons the config's down/up-sampling takes: multiples of 2^(levels - 1), upstream's 4, 8, 16 among them."""
    return st.integers(1, 16 // cfg.horizon_multiple).map(lambda k: k * cfg.horizon_multiple)


def _transformer_common(draw: st.DrawFn) -> dict:
    """Small transformer policies: gelu or relu, one to three heads of up to four dims (an embedding of >= 3: see
    `widths`), one or two decoder layers."""
    heads = draw(st.integers(1, 3))
    return dict(
        action_dim=draw(st.integers(1, 3)),
        horizon_steps=draw(st.integers(1, 4)),
        cond_dim=draw(st.integers(1, 12)),
        transformer_embed_dim=heads * draw(st.integers(-(-3 // heads), 4)),
        transformer_num_heads=heads,
        transformer_num_layers=draw(st.integers(1, 2)),
        transformer_activation=draw(st.sampled_from(TRANSFORMER_ACTIVATIONS)),
        std_min=draw(st.sampled_from([0.01, 0.05])),
        std_max=draw(st.sampled_from([0.2, 1.0])),
    )


@st.composite
def gaussian_transformer_configs(draw: st.DrawFn) -> GaussianTransformerConfig:
    """Gaussian_Transformer with a learned, a fixed or a learned fixed std."""
    fixed_std = draw(st.sampled_from([None, 0.1]))
    return GaussianTransformerConfig(**_transformer_common(draw), fixed_std=fixed_std,
                                     learn_fixed_std=fixed_std is not None and draw(st.booleans()))


@st.composite
def gmm_transformer_configs(draw: st.DrawFn) -> GMMTransformerConfig:
    """GMM_Transformer with a fixed or a learned fixed std (upstream cannot run a learned one)."""
    return GMMTransformerConfig(**_transformer_common(draw), num_modes=draw(st.integers(1, 3)), fixed_std=0.1,
                                learn_fixed_std=draw(st.booleans()))


transformer_configs = st.one_of(gaussian_transformer_configs(), gmm_transformer_configs())


@st.composite
def gmm_mlp_configs(draw: st.DrawFn) -> GMMMLPConfig:
    """GMM_MLP with a learned std head, a fixed std, or a learned fixed std; plain or residual, with or without
    layer norm."""
    std = draw(st.sampled_from(["head", "fixed", "learned_fixed"]))
    residual = draw(st.booleans())
    hidden = draw(hidden_dims(residual)) or (draw(widths),)
    std_min = draw(st.floats(0.01, 0.3))
    return GMMMLPConfig(
        action_dim=draw(st.integers(1, 4)),
        horizon_steps=draw(st.integers(1, 4)),
        cond_dim=draw(st.integers(1, 12)),
        mlp_dims=hidden,
        num_modes=draw(st.integers(1, 5)),
        activation_type=draw(activations),
        residual_style=residual,
        use_layernorm=draw(st.booleans()),
        fixed_std=None if std == "head" else draw(st.floats(0.05, 1.0)),
        learn_fixed_std=std == "learned_fixed",
        std_min=std_min,
        std_max=std_min + draw(st.floats(0.05, 1.0)),
    )


@st.composite
def critic_configs(draw: st.DrawFn) -> CriticObsConfig:
    residual = draw(st.booleans())
    hidden = draw(hidden_dims(residual)) or (draw(widths),)
    return CriticObsConfig(
        cond_dim=draw(st.integers(1, 12)),
        mlp_dims=hidden,
        activation_type=draw(activations),
        use_layernorm=draw(st.booleans()),
        residual_style=residual,
    )


@st.composite
def vit_encoder_configs(draw: st.DrawFn, frames: int = 1) -> VitEncoderConfig:
    """Small ViT backbones: either patch embedding (embed2 with or without GroupNorm) on 8-24 pixel square images
    (1 to 9 patches), 1-2 layers, 1-2 heads of width >= 3."""
    style = draw(st.sampled_from(EMBED_STYLES))
    size = draw(st.sampled_from((8, 16) if style == "embed1" else (16, 24)))
    heads = draw(st.integers(1, 2))
    vit = VitSettings(depth=draw(st.integers(1, 2)), embed_dim=heads * draw(st.integers(3, 4)), num_heads=heads,
                      embed_style=style, embed_norm=int(style == "embed2" and draw(st.booleans())))
    return VitEncoderConfig(obs_shape=(3, size, size), cfg=vit, num_channel=3 * frames, img_h=size, img_w=size)


@st.composite
def _vision_common(draw: st.DrawFn, readout_required: bool = False) -> dict:
    """What the three image networks share: backbone, 1-2 stacked frames, 1-2 cameras, SpatialEmb or (one camera
    only) the flattened readout, augmentation on or off."""
    frames = draw(st.integers(1, 2))
    num_img = draw(st.integers(1, 2))
    flat = not readout_required and num_img == 1 and draw(st.booleans())
    return dict(backbone=draw(vit_encoder_configs(frames)), cond_dim=draw(st.integers(1, 6)), img_cond_steps=frames,
                num_img=num_img, spatial_emb=0 if flat else draw(st.integers(3, 6)),
                visual_feature_dim=draw(st.integers(3, 8)), augment=draw(st.booleans()))


@st.composite
def vision_diffusion_mlp_configs(draw: st.DrawFn) -> VisionDiffusionMLPConfig:
    residual = draw(st.booleans())
    return VisionDiffusionMLPConfig(
        **draw(_vision_common()), action_dim=draw(st.integers(1, 3)), horizon_steps=draw(st.integers(1, 3)),
        time_dim=draw(st.sampled_from([4, 8])), mlp_dims=draw(hidden_dims(residual)) or (draw(widths),),
        activation_type=draw(activations), use_layernorm=draw(st.booleans()), residual_style=residual)


@st.composite
def gaussian_vision_mlp_configs(draw: st.DrawFn) -> GaussianVisionMLPConfig:
    """Each std kind: a learned head, a fixed std, a learned fixed std."""
    std = draw(st.sampled_from(["head", "fixed", "learned_fixed"]))
    residual = draw(st.booleans())
    std_min = draw(st.floats(0.01, 0.3))
    return GaussianVisionMLPConfig(
        **draw(_vision_common()), action_dim=draw(st.integers(1, 3)), horizon_steps=draw(st.integers(1, 3)),
        mlp_dims=draw(hidden_dims(residual)) or (draw(widths),), activation_type=draw(activations),
        residual_style=residual, use_layernorm=draw(st.booleans()),
        fixed_std=None if std == "head" else draw(st.floats(0.05, 1.0)), learn_fixed_std=std == "learned_fixed",
        std_min=std_min, std_max=std_min + draw(st.floats(0.05, 1.0)))


@st.composite
def vit_critic_configs(draw: st.DrawFn) -> ViTCriticConfig:
    residual = draw(st.booleans())
    return ViTCriticConfig(**draw(_vision_common(readout_required=True)),
                           mlp_dims=draw(hidden_dims(residual)) or (draw(widths),), activation_type=draw(activations),
                           use_layernorm=draw(st.booleans()), residual_style=residual)


image_network_configs = st.one_of(vision_diffusion_mlp_configs(), gaussian_vision_mlp_configs(),
                                  vit_critic_configs())

# One strategy per registered network family (shared/param_spec/families.py), by the family's name.
FAMILY_CONFIGS = {
    "diffusion_mlp": diffusion_mlp_configs(),
    "gaussian_mlp": gaussian_mlp_configs(),
    "unet": unet_configs(),
    "gaussian_transformer": gaussian_transformer_configs(),
    "gmm_transformer": gmm_transformer_configs(),
    "gmm_mlp": gmm_mlp_configs(),
    "vision_diffusion_mlp": vision_diffusion_mlp_configs(),
    "gaussian_vision_mlp": gaussian_vision_mlp_configs(),
    "critic_obs": critic_configs(),
    "vit_critic": vit_critic_configs(),
}


@st.composite
def q_critic_configs(draw: st.DrawFn) -> CriticObsActConfig:
    """Q(s, a) critics: one or two heads, plain or residual (upstream's residual_tyle)."""
    residual = draw(st.booleans())
    hidden = draw(hidden_dims(residual)) or (draw(widths),)
    return CriticObsActConfig(
        cond_dim=draw(st.integers(1, 12)),
        mlp_dims=hidden,
        action_dim=draw(st.integers(1, 3)),
        action_steps=draw(st.integers(1, 4)),
        activation_type=draw(activations),
        use_layernorm=draw(st.booleans()),
        residual_tyle=residual,
        double_q=draw(st.booleans()),
    )


@st.composite
def diffusion_configs(draw: st.DrawFn) -> DiffusionConfig:
    """Small diffusion models: DDPM or DDIM, epsilon or x0 prediction, clipping on or off."""
    obs_dim = draw(st.integers(1, 6))
    cond_steps = draw(st.integers(1, 2))
    action_dim = draw(st.integers(1, 3))
    horizon = draw(st.integers(1, 4))
    net = draw(diffusion_mlp_configs())
    net = DiffusionMLPConfig(**{**net.__dict__, "action_dim": action_dim, "horizon_steps": horizon,
                                "cond_dim": obs_dim * cond_steps})
    steps = draw(st.integers(2, 12))
    use_ddim = draw(st.booleans())
    predict_epsilon = draw(st.booleans())
    return DiffusionConfig(
        network=net,
        horizon_steps=horizon,
        obs_dim=obs_dim,
        action_dim=action_dim,
        cond_steps=cond_steps,
        denoising_steps=steps,
        predict_epsilon=predict_epsilon,
        denoised_clip_value=draw(st.sampled_from([None, 1.0])),
        randn_clip_value=draw(st.sampled_from([3.0, 10.0])),
        final_action_clip_value=draw(st.sampled_from([None, 1.0])),
        use_ddim=use_ddim,
        ddim_steps=draw(st.integers(1, steps)) if use_ddim else None,
    )


def bounded_floats(rng: np.random.Generator, shape: tuple[int, ...], bound: float = 2.0) -> np.ndarray:
    """Finite float32 inputs in [-bound, bound]."""
    return rng.uniform(-bound, bound, shape).astype(np.float32)


@st.composite
def guided_overrides(draw: st.DrawFn) -> list[str]:
    """Overrides of configs/reward_guided/rosenbrock.yaml: a small denoiser and chain, either reward path,
    MPPI on or off with its own K, temperature and jitter."""
    return [f"model.hidden_dim={draw(widths)}", f"model.time_dim={draw(st.integers(1, 8))}",
            f"model.denoising_steps={draw(st.integers(2, 12))}", f"train.batch_size={draw(st.integers(2, 16))}",
            f"train.reward_gradient={str(draw(st.booleans())).lower()}",
            f"train.max_grad_norm={draw(st.sampled_from(['null', '1.0', '0.01']))}",
            f"sample.mppi={str(draw(st.booleans())).lower()}", f"sample.mppi_candidates={draw(st.integers(1, 5))}",
            f"sample.mppi_temperature={draw(st.sampled_from([0.05, 0.5, 5.0]))}",
            f"sample.mppi_jitter={draw(st.sampled_from([0.01, 0.05, 0.3]))}"]
