"""Section `pretrain`: upstream DiffusionModel.loss (t and noise injected) and its gradient w.r.t. the
network, and one update of upstream's EMA class (agent/pretrain/train_agent.py)."""

from __future__ import annotations

import types

import numpy as np

from scripts.golden import upstream_models as um
from scripts.golden.common import Context, f32, to_np
from shared.param_spec import diffusion_mlp_spec, torch_default_init

CASES = [("loss_eps", dict(denoising_steps=20)), ("loss_x0", dict(denoising_steps=20, predict_epsilon=False))]
EMA_DECAY = 0.995


def build(ctx: Context) -> None:
    import torch

    for i, (name, kw) in enumerate(CASES):
        dc = um.diffusion_config(**kw)
        params = torch_default_init(diffusion_mlp_spec(um.NET), 800 + i)
        rng = ctx.rng(name)
        x0 = f32(rng.uniform(-1, 1, (um.B, um.TA, um.DA)))
        state = f32(rng.uniform(-1, 1, (um.B, um.TO, um.DO)))
        t = rng.integers(0, dc.denoising_steps, um.B).astype(np.int64)
        noise = f32(rng.standard_normal((um.B, um.TA, um.DA)))

        def run(f64: bool, dc=dc, params=params, x0=x0, state=state) -> dict:
            model = um.diffusion_model(ctx, dc, params)
            dt = torch.get_default_dtype()
            loss = model.loss(torch.from_numpy(x0).to(dt), {"state": torch.from_numpy(state).to(dt)})
            named = list(model.network.named_parameters())
            grads = torch.autograd.grad(loss, [p for _, p in named])
            return {"loss": to_np(loss), **{f"grad/network.{n}": to_np(g) for (n, _), g in zip(named, grads)}}

        up32, up64 = ctx.double_run(run, [t, noise])
        ctx.case(name, {"kind": "loss", "diffusion": um.config_meta(dc)},
                 {"x0": x0, "state": state, "t": t, "noise": noise,
                  **{f"param/network.{k}": v for k, v in params.items()}}, up32, up64)

    # EMA: ema <- decay * ema + (1 - decay) * model, over every parameter
    from agent.pretrain.train_agent import EMA

    model_p = torch_default_init(diffusion_mlp_spec(um.NET), 810)
    ema_p = torch_default_init(diffusion_mlp_spec(um.NET), 811)

    def run(f64: bool) -> dict:
        dc = um.diffusion_config(denoising_steps=20)
        model, ema_model = um.diffusion_model(ctx, dc, model_p), um.diffusion_model(ctx, dc, ema_p)
        EMA(types.SimpleNamespace(decay=EMA_DECAY)).update_model_average(ema_model, model)
        return {f"ema/network.{n}": to_np(p) for n, p in ema_model.network.named_parameters()}

    up32, up64 = ctx.double_run(run)
    ctx.case("ema", {"kind": "ema", "decay": EMA_DECAY},
             {**{f"param/model/network.{k}": v for k, v in model_p.items()},
              **{f"param/ema/network.{k}": v for k, v in ema_p.items()}}, up32, up64)
