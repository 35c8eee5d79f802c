"""Section `sampling`: DDPM and DDIM reverse chains of upstream DiffusionModel (evaluation) and
PPODiffusion (fine-tuning: ft_denoising_steps, min_sampling_denoising_std, eta), with injected noise,
and get_logprobs of the sampled chains.

Noise layout, as our twins take it: (S + 1, B, Ta, Da), x_T first, then one draw per reverse step
(upstream draws one even at the last DDPM step, where its std is zero).
"""

from __future__ import annotations

import numpy as np

from scripts.golden import upstream_models as um
from scripts.golden.common import Context, f32, to_np
from shared.param_spec import diffusion_mlp_spec, torch_default_init

# (name, DiffusionConfig kwargs, deterministic)
EVAL_CASES = [
    ("eval_ddpm", dict(denoising_steps=10, randn_clip_value=2.0, final_action_clip_value=0.9), True),
    ("eval_ddim", dict(denoising_steps=20, use_ddim=True, ddim_steps=5, final_action_clip_value=0.9), True),
    ("eval_ddpm_x0", dict(denoising_steps=6, predict_epsilon=False, denoised_clip_value=0.8), True),
]

ETA_FIXED = {"kind": "EtaFixed", "base_eta": 0.5, "min_eta": 0.1, "max_eta": 1.0}
ETA_ACTION = {"kind": "EtaAction", "base_eta": 0.5, "min_eta": 0.1, "max_eta": 1.0}
DDPM = dict(denoising_steps=10, randn_clip_value=2.5, final_action_clip_value=1.0)
DDIM = dict(denoising_steps=20, use_ddim=True, ddim_steps=5, randn_clip_value=2.5, final_action_clip_value=1.0)

# (name, DiffusionConfig kwargs, dppo options, eta, deterministic)
FT_CASES = [
    ("ft_ddpm_stoch", DDPM, dict(ft_denoising_steps=3, min_sampling_denoising_std=0.08), None, False),
    ("ft_ddpm_det", DDPM, dict(ft_denoising_steps=3, min_sampling_denoising_std=0.08), None, True),
    ("ft_ddpm_all_steps", dict(DDPM, denoising_steps=5), dict(ft_denoising_steps=5, min_sampling_denoising_std=0.1),
     None, False),
    ("ft_ddim_eta_fixed", DDIM, dict(ft_denoising_steps=3, min_sampling_denoising_std=0.05), ETA_FIXED, False),
    ("ft_ddim_eta_fixed_all_steps", DDIM, dict(ft_denoising_steps=5, min_sampling_denoising_std=0.05), ETA_FIXED,
     False),
    ("ft_ddim_det_eta_fixed", DDIM, dict(ft_denoising_steps=3, min_sampling_denoising_std=0.05), ETA_FIXED, True),
    ("ft_ddim_det_eta_zero", DDIM, dict(ft_denoising_steps=3, min_sampling_denoising_std=0.05),
     dict(ETA_FIXED, base_eta=0.0, min_eta=0.0), True),
    ("ft_ddim_eta_action", DDIM, dict(ft_denoising_steps=3, min_sampling_denoising_std=0.05), ETA_ACTION, False),
]


def dppo_options(opts: dict) -> dict:
    return {"min_logprob_denoising_std": 0.1, **opts}


def _noise(ctx: Context, name: str, steps: int) -> np.ndarray:
    return f32(ctx.rng(name + "noise").standard_normal((steps + 1, um.B, um.TA, um.DA)))


def _state(ctx: Context, name: str) -> np.ndarray:
    return f32(ctx.rng(name + "state").uniform(-1, 1, (um.B, um.TO, um.DO)))


def build(ctx: Context) -> None:
    import torch

    for i, (name, kw, det) in enumerate(EVAL_CASES):
        dc = um.diffusion_config(**kw)
        steps = dc.ddim_steps if dc.use_ddim else dc.denoising_steps
        params = torch_default_init(diffusion_mlp_spec(um.NET), 400 + i)
        noise, state = _noise(ctx, name, steps), _state(ctx, name)

        def run(f64: bool, dc=dc, params=params, state=state, det=det) -> dict:
            model = um.diffusion_model(ctx, dc, params)
            s = torch.from_numpy(state).to(torch.get_default_dtype())
            return {"actions": to_np(model({"state": s}, deterministic=det).trajectories)}

        up32, up64 = ctx.double_run(run, list(noise))
        ctx.case(name, {"kind": "eval", "diffusion": um.config_meta(dc), "deterministic": det},
                 {"state": state, "noise": noise, **{f"param/{k}": v for k, v in params.items()}}, up32, up64)

    for i, (name, kw, opts, eta, det) in enumerate(FT_CASES):
        dc = um.diffusion_config(**kw)
        dppo = dppo_options(opts)
        steps = dc.ddim_steps if dc.use_ddim else dc.denoising_steps
        params = um.policy_params(ctx, 500 + i, with_critic=False)
        if eta is not None and eta["kind"] == "EtaAction":  # a learned per-action eta, moved off its start
            params["eta.eta_logit"] = f32(ctx.rng(name + "eta").uniform(-1.5, 1.5, um.DA))
        noise, state = _noise(ctx, name, steps), _state(ctx, name)

        def run(f64: bool, dc=dc, dppo=dppo, params=params, state=state, eta=eta, det=det) -> dict:
            model = um.ppo_diffusion(ctx, dc, dppo, params, eta=eta, learn_eta=eta is not None
                                     and eta["kind"] == "EtaAction")
            s = {"state": torch.from_numpy(state).to(torch.get_default_dtype())}
            with torch.no_grad():
                sample = model(s, deterministic=det, return_chain=True)
                out = {"actions": to_np(sample.trajectories), "chains": to_np(sample.chains)}
                if eta is not None:
                    out["eta"] = to_np(model.eta(s))
            return out

        up32, up64 = ctx.double_run(run, list(noise))
        # log-probabilities of upstream's own float32 chain, scored by get_logprobs in both precisions
        chains = up32["chains"]

        def run_lp(f64: bool, dc=dc, dppo=dppo, params=params, state=state, eta=eta, chains=chains) -> dict:
            model = um.ppo_diffusion(ctx, dc, dppo, params, eta=eta, learn_eta=eta is not None
                                     and eta["kind"] == "EtaAction")
            dt = torch.get_default_dtype()
            with torch.no_grad():
                lp = model.get_logprobs({"state": torch.from_numpy(state).to(dt)}, torch.from_numpy(chains).to(dt))
            K = dppo["ft_denoising_steps"]
            return {"logprobs": to_np(lp).reshape(um.B, K, um.TA, um.DA)}

        lp32, lp64 = ctx.double_run(run_lp)
        meta = {"kind": "finetune", "diffusion": um.config_meta(dc), "dppo": dppo, "eta": eta,
                "deterministic": det}
        if eta is not None and eta["kind"] == "EtaAction":
            meta["eta_fixture"] = (
                "Learnable per-action DDIM eta (upstream model/diffusion/eta.py EtaAction, parameter "
                "'eta.eta_logit' of shape (Da,), stored as in/param/eta.eta_logit): eta = min_eta + (max_eta - "
                "min_eta) * (tanh(eta_logit) + 1) / 2, one value per action dim, shared by every row and step; "
                "sigma = eta * sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev)) per action dim. Inputs: state, "
                "noise (S+1, B, Ta, Da), actor.* / actor_ft.* params; outputs: actions, chains (B, K+1, Ta, Da), "
                "eta (B, Da), logprobs (B, K, Ta, Da) of the float32 chain.")
        ctx.case(name, meta, {"state": state, "noise": noise, **{f"param/{k}": v for k, v in params.items()}},
                 {**up32, **lp32}, {**up64, **lp64})
