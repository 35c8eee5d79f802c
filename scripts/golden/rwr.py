"""Section `rwr`: upstream RWRDiffusion's reward-weighted loss (timesteps and noise injected) with its
gradient w.r.t. the network, and its exploration / evaluation sampler (min_sampling_denoising_std).

The weights are what upstream's TrainRWRDiffusionAgent hands the loss: exp(beta * normalised return)
clipped at max_reward_weight; the case draws returns so that some weights are clipped and some not.
"""

from __future__ import annotations

import numpy as np

from scripts.golden import upstream_models as um
from scripts.golden.common import Context, f32, to_np
from shared.param_spec import diffusion_mlp_spec, torch_default_init

BETA, MAX_WEIGHT, MIN_STD = 2.0, 5.0, 0.1
LOSS_CASES = [("loss_eps", dict(denoising_steps=10)), ("loss_x0", dict(denoising_steps=10, predict_epsilon=False))]
SAMPLE_CASES = [("sample_stochastic", False), ("sample_deterministic", True)]
SAMPLER = dict(denoising_steps=8, randn_clip_value=3.0, final_action_clip_value=1.0)


def _weights(rng: np.random.Generator) -> np.ndarray:
    """Upstream's weight formula on float32 normalised returns (its tensors are float32)."""
    returns = rng.normal(100.0, 30.0, um.B)
    norm = f32((returns - returns.mean()) / (returns.std() + 1e-3))
    return f32(np.minimum(np.exp(np.float32(BETA) * norm), np.float32(MAX_WEIGHT)))


def build(ctx: Context) -> None:
    import torch

    for i, (name, kw) in enumerate(LOSS_CASES):
        dc = um.diffusion_config(**kw)
        params = torch_default_init(diffusion_mlp_spec(um.NET), 900 + i)
        rng = ctx.rng(name)
        x0 = f32(rng.uniform(-1, 1, (um.B, um.TA, um.DA)))
        state = f32(rng.uniform(-1, 1, (um.B, um.TO, um.DO)))
        weights = _weights(rng)
        t = rng.integers(0, dc.denoising_steps, um.B).astype(np.int64)
        noise = f32(rng.standard_normal((um.B, um.TA, um.DA)))
        assert (weights == MAX_WEIGHT).any() and (weights < MAX_WEIGHT).any()

        def run(f64: bool, dc=dc, params=params, x0=x0, state=state, weights=weights) -> dict:
            model = um.rwr_diffusion(ctx, dc, MIN_STD, params)
            dt = torch.get_default_dtype()
            loss = model.loss(torch.from_numpy(x0).to(dt), {"state": torch.from_numpy(state).to(dt)},
                              torch.from_numpy(weights).to(dt))
            named = list(model.network.named_parameters())
            grads = torch.autograd.grad(loss, [p for _, p in named])
            return {"loss": to_np(loss), **{f"grad/network.{n}": to_np(g) for (n, _), g in zip(named, grads)}}

        up32, up64 = ctx.double_run(run, [t, noise])
        ctx.case(name, {"kind": "loss", "diffusion": um.config_meta(dc), "beta": BETA,
                        "max_reward_weight": MAX_WEIGHT},
                 {"x0": x0, "state": state, "weights": weights, "t": t, "noise": noise,
                  **{f"param/network.{k}": v for k, v in params.items()}}, up32, up64)

    for i, (name, det) in enumerate(SAMPLE_CASES):
        dc = um.diffusion_config(**SAMPLER)
        params = torch_default_init(diffusion_mlp_spec(um.NET), 910 + i)
        rng = ctx.rng(name)
        state = f32(rng.uniform(-1, 1, (um.B, um.TO, um.DO)))
        noise = f32(rng.standard_normal((dc.denoising_steps + 1, um.B, um.TA, um.DA)))

        def run(f64: bool, dc=dc, params=params, state=state, det=det) -> dict:
            model = um.rwr_diffusion(ctx, dc, MIN_STD, params)
            s = torch.from_numpy(state).to(torch.get_default_dtype())
            return {"actions": to_np(model({"state": s}, deterministic=det))}

        up32, up64 = ctx.double_run(run, list(noise))
        ctx.case(name, {"kind": "sample", "diffusion": um.config_meta(dc), "deterministic": det,
                        "min_sampling_denoising_std": MIN_STD},
                 {"state": state, "noise": noise, **{f"param/network.{k}": v for k, v in params.items()}},
                 up32, up64)
