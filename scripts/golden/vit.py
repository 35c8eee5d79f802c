"""Section `vit`: upstream's image stack on shared canonical weights. RandomShiftsAug on injected shifts (its
`torch.randint` answers with our numpy draw); VisionDiffusionMLP, Gaussian_VisionMLP and ViTCritic with a
VitEncoder backbone: the output, the gradients w.r.t. the proprioception, the (float) pixels and every
parameter of a weighted sum of it, over the options upstream has (embed1 / embed2 with and without GroupNorm,
depth 1 and 2, one and two heads, SpatialEmb or the flattened readout, one or two cameras, one or two stacked
frames, augmentation with injected shifts, each std kind); and, for every *_img config upstream ships (vendored),
the state_dict names and shapes of its networks with the mean, std and largest magnitude of each tensor upstream
initialises.

Upstream casts the images to float32 (`rgb.float()`) and so cannot run in float64 as it is; the float64 run wraps
the backbone and the augmentation to take float64 (the pixel values are integers, exact in both).
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any

import numpy as np

from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec.families import network_init
from shared.param_spec.vit import (
    GaussianVisionMLPConfig,
    VisionDiffusionMLPConfig,
    ViTCriticConfig,
    VitEncoderConfig,
    VitSettings,
)

B, TO, DO = 3, 1, 4  # batch, proprioception history, proprioception dim
COND = TO * DO
PAD = 4


def _backbone(size: int, frames: int, **vit: Any) -> VitEncoderConfig:
    return VitEncoderConfig(obs_shape=(3, size, size), cfg=VitSettings(**vit), num_channel=3 * frames,
                            img_h=size, img_w=size)


_SMALL = {"embed_dim": 8, "num_heads": 2}
CASES: dict[str, Any] = {  # name: config; small images and widths keep the fixture small
    "diffusion_spatial_embed2": VisionDiffusionMLPConfig(
        backbone=_backbone(24, 1, **_SMALL), cond_dim=COND, action_dim=2, horizon_steps=3, time_dim=4,
        mlp_dims=(8, 8, 8), residual_style=True, spatial_emb=6),
    "diffusion_flat_embed1_two_frames": VisionDiffusionMLPConfig(
        backbone=_backbone(16, 2, embed_style="embed1", depth=2, **_SMALL), cond_dim=COND, img_cond_steps=2,
        action_dim=2, horizon_steps=2, time_dim=4, mlp_dims=(8, 8), visual_feature_dim=5, use_layernorm=True),
    "diffusion_two_cameras_augment": VisionDiffusionMLPConfig(
        backbone=_backbone(16, 1, embed_norm=1, embed_dim=8, num_heads=1), cond_dim=COND, action_dim=2,
        horizon_steps=2, time_dim=4, mlp_dims=(8, 8, 8), residual_style=True, spatial_emb=4, num_img=2,
        augment=True),
    "gaussian_fixed_std_augment": GaussianVisionMLPConfig(
        backbone=_backbone(24, 1, **_SMALL), cond_dim=COND, action_dim=2, horizon_steps=3, mlp_dims=(8, 8, 8),
        residual_style=True, spatial_emb=6, fixed_std=0.1, augment=True),
    "gaussian_learned_std_flat": GaussianVisionMLPConfig(
        backbone=_backbone(16, 2, depth=2, **_SMALL), cond_dim=COND, img_cond_steps=2, action_dim=2,
        horizon_steps=2, mlp_dims=(8, 6), visual_feature_dim=5, std_min=0.05, std_max=0.5),
    "gaussian_learn_fixed_std_two_cameras": GaussianVisionMLPConfig(
        backbone=_backbone(16, 1, **_SMALL), cond_dim=COND, action_dim=2, horizon_steps=2, mlp_dims=(8, 8),
        spatial_emb=4, num_img=2, fixed_std=0.3, learn_fixed_std=True, std_min=0.01, std_max=0.2),
    "critic": ViTCriticConfig(
        backbone=_backbone(24, 1, **_SMALL), cond_dim=COND, spatial_emb=6, mlp_dims=(8, 8, 8), residual_style=True),
    "critic_two_cameras_augment_embed1": ViTCriticConfig(
        backbone=_backbone(16, 1, embed_style="embed1", **_SMALL), cond_dim=COND, spatial_emb=3, num_img=2,
        mlp_dims=(8, 8), augment=True),
}

REPO = Path(__file__).resolve().parents[2]
VENDORED = "tests/fixtures/upstream_cfg/cfg/robomimic"
TARGETS = {cls.UPSTREAM_TARGETS[0]: cls for cls in (VisionDiffusionMLPConfig, GaussianVisionMLPConfig,
                                                      ViTCriticConfig)}


class _Shifts:
    """Stands in for `torch` inside upstream's modules.py: randint returns the queued shifts (in the dtype and
    shape upstream asks for), everything else is torch."""

    def __init__(self, torch_mod: Any, queue: list[np.ndarray]) -> None:
        self._torch, self.queue = torch_mod, queue

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)

    def randint(self, low: int, high: int, size: Any, device: Any = None, dtype: Any = None) -> Any:
        shifts = self.queue.pop(0)  # (n, 2)
        assert (low, high) == (0, 2 * PAD + 1) and tuple(size) == (shifts.shape[0], 1, 1, 2)
        return self._torch.from_numpy(shifts).to(dtype).reshape(tuple(size))


def upstream_network(cfg: Any) -> Any:
    """Upstream's class built from our config (the backbone first, as Hydra's instantiate does)."""
    from model.common.critic import ViTCritic
    from model.common.mlp_gaussian import Gaussian_VisionMLP
    from model.common.vit import VitEncoder
    from model.diffusion.mlp_diffusion import VisionDiffusionMLP

    bb = cfg.backbone
    backbone = VitEncoder(list(bb.obs_shape), types.SimpleNamespace(**dataclasses.asdict(bb.cfg)),
                          num_channel=bb.num_channel, img_h=bb.img_h, img_w=bb.img_w)
    kwargs = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "backbone"}
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    cls = {VisionDiffusionMLPConfig: VisionDiffusionMLP, GaussianVisionMLPConfig: Gaussian_VisionMLP,
           ViTCriticConfig: ViTCritic}[type(cfg)]
    return cls(backbone=backbone, **kwargs)


def _params(ctx: Context, name: str, cfg: Any, seed: int) -> dict[str, np.ndarray]:
    """Our canonical init, LayerNorm and GroupNorm scales and shifts moved off 1 and 0 (else their gradients meet
    a trivial affine map only) and the ViT's zero biases made nonzero."""
    params = network_init(cfg, seed)
    rng = ctx.rng(name + "/params")
    for key, value in params.items():
        module = key.rsplit(".", 1)[0]
        if value.ndim == 1 and params.get(module + ".weight", value).ndim == 1 and key != "logvar":  # a norm
            params[key] = f32((1.0 if key.endswith(".weight") else 0.0) + 0.3 * rng.standard_normal(value.shape))
        elif key.endswith(".bias") and not value.any():
            params[key] = f32(0.05 * rng.standard_normal(value.shape))
    return params


def _run(cfg: Any, params: dict[str, np.ndarray], inp: dict[str, np.ndarray], f64: bool) -> dict[str, np.ndarray]:
    import torch

    net = upstream_network(cfg)
    load_weights(net, params)
    dt = torch.get_default_dtype()
    if f64:  # upstream's rgb.float() would drop the float64 run to float32: the backbone and shifts take float64
        forward = net.backbone.forward
        net.backbone.forward = lambda obs, flatten=False: forward(obs.to(dt), flatten)
        if cfg.augment:
            aug = net.aug
            net.aug = lambda x: aug(x.to(dt))
    state = torch.from_numpy(inp["state"]).to(dt).requires_grad_(True)
    rgb = torch.from_numpy(inp["rgb"]).to(dt).requires_grad_(True)
    cond = {"state": state, "rgb": rgb}
    leaves = [state, rgb]
    if isinstance(cfg, VisionDiffusionMLPConfig):
        x = torch.from_numpy(inp["x"]).to(dt).requires_grad_(True)
        leaves.append(x)
        outs = {"out": net(x, torch.from_numpy(inp["t"]), cond)}
    elif isinstance(cfg, GaussianVisionMLPConfig):
        mean, std = net(cond)
        outs = {"mean": mean, "std": std}
    else:
        outs = {"out": net(cond)}
    objective = sum((o * torch.from_numpy(inp[f"cot_{k}"]).to(dt)).sum() for k, o in outs.items())
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(objective, leaves + [p for _, p in named], allow_unused=True)
    res = {k: to_np(o) for k, o in outs.items()}
    res.update({"dstate": to_np(grads[0]), "drgb": to_np(grads[1])})
    if len(leaves) == 3:
        res["dx"] = to_np(grads[2])
    res.update({"grad/" + n: to_np(g) if g is not None else np.zeros(tuple(p.shape), np.float32)
                for (n, p), g in zip(named, grads[len(leaves):])})
    return res


def _shift_case(ctx: Context) -> None:
    """RandomShiftsAug(pad=4) on a (5, 6, 12, 12) batch with our shifts."""
    import model.common.modules as modules
    import torch

    rng = ctx.rng("random_shifts")
    images = f32(rng.uniform(0, 255, (5, 6, 12, 12)))
    shifts = rng.integers(0, 2 * PAD + 1, (5, 2))
    shifts[0], shifts[1] = (0, 0), (2 * PAD, 2 * PAD)  # the corners: replicated borders on both sides

    def run(f64: bool) -> dict:
        modules.torch = _Shifts(torch, [shifts])
        try:
            out = modules.RandomShiftsAug(pad=PAD)(torch.from_numpy(images).to(torch.get_default_dtype()))
        finally:
            modules.torch = torch
        return {"out": to_np(out)}

    up32, up64 = ctx.double_run(run)
    ctx.case("random_shifts", {"kind": "random_shifts", "pad": PAD}, {"images": images, "shifts": shifts},
             up32, up64)


def build(ctx: Context) -> None:
    import model.common.modules as modules
    import torch

    _shift_case(ctx)
    for i, (name, cfg) in enumerate(CASES.items()):
        params = _params(ctx, name, cfg, 700 + i)
        rng = ctx.rng(name)
        bb = cfg.backbone
        # one frame more than the network reads (it takes the most recent), but with two cameras: upstream's reshape
        # there takes the frames given, so they must be img_cond_steps
        frames = cfg.img_cond_steps + (cfg.num_img == 1)
        inp = {"state": f32(rng.uniform(-1, 1, (B, TO, DO))),
               "rgb": f32(rng.integers(0, 256, (B, frames, 3 * cfg.num_img, bb.img_h, bb.img_w)))}
        if isinstance(cfg, VisionDiffusionMLPConfig):
            inp["x"] = f32(rng.standard_normal((B, cfg.horizon_steps, cfg.action_dim)))
            inp["t"] = rng.integers(0, 100, B).astype(np.int64)
            inp["cot_out"] = f32(rng.standard_normal((B, cfg.horizon_steps, cfg.action_dim)))
        elif isinstance(cfg, GaussianVisionMLPConfig):
            inp["cot_mean"] = f32(rng.standard_normal((B, cfg.output_dim)))
            inp["cot_std"] = f32(rng.standard_normal((B, cfg.output_dim)))
        else:
            inp["cot_out"] = f32(rng.standard_normal((B, 1)))
        if cfg.augment:
            inp["shifts"] = rng.integers(0, 2 * PAD + 1, (cfg.num_img, B, 2))

        def run(f64: bool, cfg=cfg, params=params, inp=inp) -> dict:
            modules.torch = _Shifts(torch, list(inp["shifts"]) if cfg.augment else [])
            try:
                return _run(cfg, params, inp, f64)
            finally:
                modules.torch = torch

        up32, up64 = ctx.double_run(run)
        meta = {"kind": type(cfg).__name__, "config": _as_meta(cfg)}
        ctx.case(name, meta, {**inp, **{f"param/{k}": v for k, v in params.items()}}, up32, up64)

    _shipped_state_dicts(ctx)


def _as_meta(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def shipped_image_networks() -> dict[str, dict]:
    """{'<vendored config path>:<model key>': its image network section (resolved)} for every vendored *_img
    config: model.network, model.actor and model.critic."""
    from omegaconf import OmegaConf

    import shared.config.loading  # noqa: F401  (registers upstream's resolvers)

    out = {}
    for path in sorted((REPO / VENDORED).glob("*/*/*_img.yaml")):
        raw = OmegaConf.load(path)
        for key in ("network", "actor", "critic"):
            section = raw.model.get(key)
            if section is not None and section.get("_target_") in TARGETS:
                out[f"{path.relative_to(REPO)}:{key}"] = OmegaConf.to_container(section, resolve=True)
    return out


def _shipped_state_dicts(ctx: Context) -> None:
    """Upstream's state_dict names (in order) and shapes, and its fresh initialisation summarised per tensor, for
    each image network upstream's *_img configs build (read by our reader, built by upstream's classes)."""
    from shared.config.reader import read

    for where, section in shipped_image_networks().items():
        cfg = read(TARGETS[section["_target_"]], section, where)
        state = upstream_network(cfg).state_dict()
        rows = np.array([" ".join([k, *map(str, v.shape)]) for k, v in state.items()], dtype="S")
        values = [v.double().flatten() for v in state.values()]
        init = {"init_mean": np.array([float(v.mean()) for v in values]),
                "init_std": np.array([float(v.std(unbiased=False)) for v in values]),
                "init_absmax": np.array([float(v.abs().max()) for v in values])}
        ctx.case("shipped:" + where.replace("/", ":"), {"kind": "state_dict", "where": where, "section": section},
                 {"state_dict": rows, **init}, {})
