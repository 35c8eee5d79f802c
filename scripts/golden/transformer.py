"""Section `transformer`: upstream's Gaussian_Transformer and GMM_Transformer (every std variant upstream can run,
gelu and relu) on shared canonical weights: outputs and the gradient of a weighted sum of them w.r.t. every
learned parameter; and, for each transformer config upstream ships, its network's state_dict names and shapes
and the mean, std and largest magnitude of each tensor upstream initialises.

Weights: our canonical init (upstream's own, drawn in numpy) for one case, the others move every parameter off
it (N(0, 0.02) weights leave attention near uniform and LayerNorms at 1 / 0, which would hide their math).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec.transformer import GaussianTransformerConfig, GMMTransformerConfig, transformer_init

B, TA, DA, TO, DO = 5, 4, 3, 2, 5  # batch, horizon, action dim, obs history, obs dim
_SMALL = dict(transformer_embed_dim=8, transformer_num_heads=2, transformer_num_layers=2)

CASES = {
    "gauss_fixed_std_init": GaussianTransformerConfig(DA, TA, TO * DO, **_SMALL, fixed_std=0.1),
    "gauss_fixed_std": GaussianTransformerConfig(DA, TA, TO * DO, **_SMALL, fixed_std=0.1),
    "gauss_learned_std": GaussianTransformerConfig(DA, TA, TO * DO, **_SMALL, std_min=0.05, std_max=0.8),
    "gauss_learn_fixed_std": GaussianTransformerConfig(DA, TA, TO * DO, **_SMALL, fixed_std=0.1,
                                                       learn_fixed_std=True, std_max=0.2),
    "gauss_relu_one_head": GaussianTransformerConfig(DA, TA, TO * DO, transformer_embed_dim=8, transformer_num_heads=1,
                                                     transformer_num_layers=2, transformer_activation="relu",
                                                     fixed_std=0.3),
    "gmm_fixed_std": GMMTransformerConfig(DA, TA, TO * DO, num_modes=3, **_SMALL, fixed_std=0.1),
    "gmm_learn_fixed_std": GMMTransformerConfig(DA, TA, TO * DO, num_modes=3, **_SMALL, fixed_std=0.1,
                                                learn_fixed_std=True, std_min=0.01, std_max=0.2),
}

# the transformer configs upstream ships, (config file, the section holding the network)
SHIPPED = [(f"robomimic/{phase}/{env}/{kind}_{family}_transformer.yaml", section)
           for env in ("lift", "can", "square", "transport")
           for phase, kind, section in (("pretrain", "pre", "network"), ("finetune", "ft_ppo", "actor"))
           for family in ("gaussian", "gmm")]
CONSTANTS = ("logvar_min", "logvar_max")  # upstream's clamp bounds: state_dict entries, not learned


def _upstream(cfg: GaussianTransformerConfig | GMMTransformerConfig):
    from model.common.transformer import Gaussian_Transformer, GMM_Transformer

    kwargs = dataclasses.asdict(cfg)
    return (Gaussian_Transformer if isinstance(cfg, GaussianTransformerConfig) else GMM_Transformer)(**kwargs)


def _params(ctx: Context, name: str, cfg: GaussianTransformerConfig | GMMTransformerConfig, seed: int) -> dict:
    params = transformer_init(cfg, seed)
    if name.endswith("_init"):
        return params
    rng = ctx.rng(name + "/params")
    moved = {}
    for key, value in params.items():
        if key == "logvar":  # spread around the clamp range so both bounds and the interior show
            moved[key] = f32(rng.uniform(np.log(cfg.std_min**2) - 1, np.log(cfg.std_max**2) + 1, value.shape))
        elif key.endswith(("norm1.weight", "norm2.weight", "norm3.weight", "ln_f.weight")):
            moved[key] = f32(1.0 + 0.3 * rng.standard_normal(value.shape))
        else:
            scale = 1.0 / np.sqrt(value.shape[-1]) if value.ndim == 2 else 0.3
            moved[key] = f32(value + scale * rng.standard_normal(value.shape))
    if isinstance(cfg, GaussianTransformerConfig) and cfg.fixed_std is None:  # log-variances below, inside and
        bias = moved["transformer.head.bias"]  # above [log std_min^2, log std_max^2], one action dim each
        bias[cfg.action_dim:] = np.resize(f32([2 * np.log(cfg.std_min) - 2, np.log(cfg.std_min * cfg.std_max),
                                               2 * np.log(cfg.std_max) + 2]), cfg.action_dim)
    return moved


def build(ctx: Context) -> None:
    import torch

    for i, (name, cfg) in enumerate(CASES.items()):
        params = _params(ctx, name, cfg, 700 + i)
        rng = ctx.rng(name)
        gmm = isinstance(cfg, GMMTransformerConfig)
        chunk = (B, cfg.num_modes, TA * DA) if gmm else (B, TA * DA)
        inp = {"state": f32(rng.uniform(-1, 1, (B, TO, DO))), "cot_mean": f32(rng.standard_normal(chunk)),
               "cot_std": f32(rng.standard_normal(chunk))}
        if gmm:
            inp["cot_logits"] = f32(rng.standard_normal((B, cfg.num_modes)))

        def run(f64: bool, cfg=cfg, params=params, inp=inp, gmm=gmm) -> dict:
            net = _upstream(cfg)
            load_weights(net, params)
            dt = torch.get_default_dtype()
            t = {k: torch.from_numpy(v).to(dt) for k, v in inp.items()}
            outs = net({"state": t["state"]})
            keys = ("mean", "std", "logits") if gmm else ("mean", "std")
            objective = sum((o * t[f"cot_{k}"]).sum() for k, o in zip(keys, outs))
            named = [(n, p) for n, p in net.named_parameters() if n not in CONSTANTS]
            grads = torch.autograd.grad(objective, [p for _, p in named], allow_unused=True)
            out = {k: to_np(o) for k, o in zip(keys, outs)}
            for (n, p), g in zip(named, grads):
                out["grad/" + n] = to_np(torch.zeros_like(p) if g is None else g)
            return out

        up32, up64 = ctx.double_run(run)
        kind = "gmm_transformer" if gmm else "gaussian_transformer"
        ctx.case(name, {"kind": kind, "config": dataclasses.asdict(cfg)},
                 {**inp, **{f"param/{k}": v for k, v in params.items()}}, up32, up64)

    _shipped_state_dicts(ctx)


def _shipped_state_dicts(ctx: Context) -> None:
    """For each shipped config: its network's constructor arguments and upstream's state_dict names and shapes
    (the test builds our spec from the same arguments)."""
    from shared.config.loading import load_config

    for var in ("DPPO_LOG_DIR", "DPPO_DATA_DIR", "DPPO_WANDB_ENTITY"):
        os.environ.setdefault(var, "/unused")
    for rel, section in SHIPPED:
        raw = load_config(Path(ctx.upstream) / "cfg" / rel)["model"][section]
        target = raw.pop("_target_")
        cls = GaussianTransformerConfig if target.endswith("Gaussian_Transformer") else GMMTransformerConfig
        net = _upstream(cls(**raw))
        state = net.state_dict()
        rows = np.array([" ".join([k, *map(str, v.shape)]) for k, v in state.items()], dtype="S")  # name d0 ..
        # upstream's fresh initialisation, summarised per tensor: what our numpy init must reproduce in distribution
        values = [v.double().flatten() for v in state.values()]
        init = {"init_mean": np.array([float(v.mean()) for v in values]),
                "init_std": np.array([float(v.std(unbiased=False)) for v in values]),
                "init_absmax": np.array([float(v.abs().max()) for v in values])}
        ctx.case("shipped:" + rel.replace("/", ":"), {"kind": "state_dict", "target": target, "config": raw,
                                                       "constants": list(CONSTANTS)}, {"state_dict": rows, **init}, {})
