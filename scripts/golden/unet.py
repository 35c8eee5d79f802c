"""Section `unet`: upstream's Unet1D on shared canonical weights: the output, the gradients w.r.t. the inputs and
every parameter of a weighted sum of it, over the options upstream has (FiLM scale or bias only, the large or small
FiLM encoder, cond_mlp, GroupNorm or none, Mish or ReLU, 1 to 3 levels, horizons 3 to 16, kernel 3 or 5); and, for
every Unet1D config upstream ships (robomimic, vendored, and furniture), its state_dict names and shapes with the
mean, std and largest magnitude of each tensor upstream initialises.

Weights: our canonical init for one case; the others move GroupNorm's scale and shift off 1 and 0 (else their
gradients meet a trivial affine map only).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec import torch_default_init
from shared.param_spec.unet import Unet1DConfig, unet_spec

B, DA, TO, DO = 4, 3, 2, 5  # batch, action dim, obs history, obs dim
COND = TO * DO

CASES: dict[str, tuple[Unet1DConfig, int]] = {  # name: (config, horizon); small widths keep the fixture small
    "robomimic_layout_init": (Unet1DConfig(DA, COND, 8, 4, (1, 2), n_groups=2, cond_predict_scale=True), 4),
    "robomimic_layout": (Unet1DConfig(DA, COND, 8, 4, (1, 2), n_groups=2, cond_predict_scale=True), 4),
    "three_levels_h16": (Unet1DConfig(DA, COND, 4, 2, (1, 2, 4), n_groups=2, cond_predict_scale=True,
                                      groupnorm_eps=1e-4), 16),
    "film_bias_no_norm_h8": (Unet1DConfig(DA, COND, 4, 4, (1, 2)), 8),
    "smaller_encoder_relu_k3": (Unet1DConfig(DA, COND, 4, 6, (1, 2), smaller_encoder=True, kernel_size=3,
                                             n_groups=3, activation_type="ReLU", cond_predict_scale=True), 4),
    "cond_mlp": (Unet1DConfig(DA, COND, 4, 4, (1, 2), cond_mlp_dims=(8, 8, 8, 6), n_groups=2,
                              cond_predict_scale=True), 8),
    "one_level_odd_horizon": (Unet1DConfig(DA, COND, 4, 6, (1,), n_groups=3), 3),
}

REPO = Path(__file__).resolve().parents[2]
VENDORED = "tests/fixtures/upstream_cfg/cfg/robomimic"  # robomimic's configs as the project vendors them
FURNITURE = "cfg/furniture"  # upstream's furniture configs (not vendored; their names and shapes only)


def _upstream(cfg: Unet1DConfig):
    from model.diffusion.unet import Unet1D

    kwargs = dataclasses.asdict(cfg)
    kwargs["dim_mults"] = list(cfg.dim_mults)
    kwargs["cond_mlp_dims"] = None if cfg.cond_mlp_dims is None else list(cfg.cond_mlp_dims)
    return Unet1D(**kwargs)


def _params(ctx: Context, name: str, cfg: Unet1DConfig, seed: int) -> dict[str, np.ndarray]:
    params = torch_default_init(unet_spec(cfg), seed)
    if name.endswith("_init"):
        return params
    rng = ctx.rng(name + "/params")
    for key, value in params.items():
        if value.ndim == 1 and key.rsplit(".", 1)[0] + ".weight" in params and \
                params[key.rsplit(".", 1)[0] + ".weight"].ndim == 1:  # a GroupNorm's scale or shift
            base = 1.0 if key.endswith(".weight") else 0.0
            params[key] = f32(base + 0.3 * rng.standard_normal(value.shape))
    return params


def build(ctx: Context) -> None:
    import torch

    for i, (name, (cfg, horizon)) in enumerate(CASES.items()):
        params = _params(ctx, name, cfg, 900 + i)
        rng = ctx.rng(name)
        inp = {"x": f32(rng.standard_normal((B, horizon, DA))), "t": rng.integers(0, 100, B).astype(np.int64),
               "state": f32(rng.uniform(-1, 1, (B, TO, DO))), "cot": f32(rng.standard_normal((B, horizon, DA)))}

        def run(f64: bool, cfg=cfg, params=params, inp=inp) -> dict:
            net = _upstream(cfg)
            load_weights(net, params)
            dt = torch.get_default_dtype()
            x = torch.from_numpy(inp["x"]).to(dt).requires_grad_(True)
            state = torch.from_numpy(inp["state"]).to(dt).requires_grad_(True)
            out = net(x, torch.from_numpy(inp["t"]), cond={"state": state})
            objective = (out * torch.from_numpy(inp["cot"]).to(dt)).sum()
            named = list(net.named_parameters())
            grads = torch.autograd.grad(objective, [x, state] + [p for _, p in named])
            res = {"out": to_np(out), "dx": to_np(grads[0]), "dstate": to_np(grads[1])}
            res.update({"grad/" + n: to_np(g) for (n, _), g in zip(named, grads[2:])})
            return res

        up32, up64 = ctx.double_run(run)
        ctx.case(name, {"kind": "unet", "horizon": horizon, "config": dataclasses.asdict(cfg)},
                 {**inp, **{f"param/{k}": v for k, v in params.items()}}, up32, up64)

    _shipped_state_dicts(ctx)


def shipped_unet_configs(upstream: Path) -> dict[str, dict]:
    """{config path: its Unet1D section without _target_} for every vendored robomimic config and every furniture
    config upstream ships that builds one (paths: the vendored file's, or 'cfg/furniture/...'). Only the network
    section is resolved (furniture's train sections use ${eval:round(...)}, which the project refuses)."""
    from omegaconf import OmegaConf

    import shared.config.loading  # noqa: F401  (registers upstream's resolvers)

    files = [(str(p.relative_to(REPO)), p) for p in sorted((REPO / VENDORED).glob("*/*/*.yaml"))]
    files += [(str(p.relative_to(upstream)), p) for p in sorted((upstream / FURNITURE).glob("*/*/*.yaml"))]
    out = {}
    for rel, path in files:
        model = OmegaConf.load(path).get("model", {})
        for key in ("network", "actor"):
            if model.get(key) is not None and model[key].get("_target_") in Unet1DConfig.UPSTREAM_TARGETS:
                section = OmegaConf.to_container(model[key], resolve=True)
                out[rel] = {k: v for k, v in section.items() if k != "_target_"}
    return out


def _shipped_state_dicts(ctx: Context) -> None:
    """Upstream Unet1D's state_dict names (in order) and shapes, and its fresh initialisation summarised per tensor
    (what our numpy init must draw in distribution), for each shipped config."""
    from model.diffusion.unet import Unet1D

    for rel, section in shipped_unet_configs(Path(ctx.upstream)).items():
        state = Unet1D(**section).state_dict()
        rows = np.array([" ".join([k, *map(str, v.shape)]) for k, v in state.items()], dtype="S")  # name d0 d1 ..
        values = [v.double().flatten() for v in state.values()]
        init = {"init_mean": np.array([float(v.mean()) for v in values]),
                "init_std": np.array([float(v.std(unbiased=False)) for v in values]),
                "init_absmax": np.array([float(v.abs().max()) for v in values])}
        ctx.case("shipped:" + rel.replace("/", ":"), {"kind": "state_dict", "config": rel, "section": section},
                 {"state_dict": rows, **init}, {})
