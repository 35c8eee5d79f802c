"""Section `ppo_loss`: every term of upstream PPODiffusion.loss and the gradients of the total loss
w.r.t. actor_ft.* and critic.*, over a grid of options (norm_adv, advantage quantiles, clip_vloss_coef,
use_bc_loss), DDPM and DDIM.

Upstream's BC branch calls `obs.float().unsqueeze(1)` on the observation dict and then indexes the
result as a dict, which cannot run on dict observations; the generator passes a dict whose
`.float().unsqueeze(1).to(device)` returns the dict itself, i.e. the teacher chain is sampled on the
same observations, which is what the comment there describes. Recorded in the manifest.
"""

from __future__ import annotations

import itertools

import numpy as np

from scripts.golden import upstream_models as um
from scripts.golden.common import Context, f32, to_np

ENT_COEF, VF_COEF, BC_COEF = 0.01, 0.5, 0.1
REWARD_HORIZON = 2
BC_ADAPTER = ("upstream PPODiffusion.loss(use_bc_loss=True) cannot run with dict observations "
              "(obs.float() on a dict); the generator passes a dict subclass whose .float().unsqueeze(1).to() "
              "returns the same dict, so the teacher chain is sampled on the minibatch observations")

DDPM = dict(denoising_steps=10, randn_clip_value=3.0)
DDIM = dict(denoising_steps=20, use_ddim=True, ddim_steps=5, randn_clip_value=3.0)
DPPO = dict(ft_denoising_steps=3, min_sampling_denoising_std=0.08, min_logprob_denoising_std=0.1)
ETA = {"kind": "EtaFixed", "base_eta": 0.5, "min_eta": 0.1, "max_eta": 1.0}


class _ObsDict(dict):
    """Observation dict that survives upstream's BC branch (see module docstring)."""

    def float(self) -> _ObsDict:
        return self

    def unsqueeze(self, dim: int) -> _ObsDict:
        return self

    def to(self, device: object) -> _ObsDict:
        return self


def _grid() -> list[tuple[str, dict, dict, dict | None]]:
    out = []
    for norm, quant, vclip, bc in itertools.product((True, False), ((0.0, 1.0), (0.1, 0.9)), (None, 0.2),
                                                    (False, True)):
        name = (f"ddpm_norm{int(norm)}_q{int(quant[0] * 10)}{int(quant[1] * 10)}_vclip{int(vclip is not None)}"
                f"_bc{int(bc)}")
        opts = dict(norm_adv=norm, clip_advantage_lower_quantile=quant[0], clip_advantage_upper_quantile=quant[1],
                    clip_vloss_coef=vclip, use_bc_loss=bc)
        out.append((name, DDPM, opts, None))
    base = dict(norm_adv=True, clip_advantage_lower_quantile=0.0, clip_advantage_upper_quantile=1.0,
                clip_vloss_coef=0.2)
    out.append(("ddim_eta_fixed", DDIM, dict(base, use_bc_loss=False), ETA))
    out.append(("ddim_eta_fixed_bc", DDIM, dict(base, use_bc_loss=True), ETA))
    return out


def _batch(ctx: Context, dc_kw: dict, weights: dict, eta: dict | None, tag: str) -> dict[str, np.ndarray]:
    """A minibatch like upstream's buffer: chains sampled by the policy, old log-probs near the new ones."""
    import torch

    dc = um.diffusion_config(**dc_kw)
    steps = dc.ddim_steps if dc.use_ddim else dc.denoising_steps
    rng = ctx.rng(tag)
    state = f32(rng.uniform(-1, 1, (um.B, um.TO, um.DO)))
    noise = f32(rng.standard_normal((steps + 1, um.B, um.TA, um.DA)))
    with ctx.precision(False, list(noise)):
        model = um.ppo_diffusion(ctx, dc, DPPO, weights, eta=eta)
        s = {"state": torch.from_numpy(state)}
        with torch.no_grad():
            chains = model(s, deterministic=False, return_chain=True).chains
            lp = model.get_logprobs(s, chains).reshape(um.B, DPPO["ft_denoising_steps"], um.TA, um.DA)
            values = model.critic(s).view(-1)
    K = DPPO["ft_denoising_steps"]
    return {
        "obs": state, "chains": to_np(chains),
        "logprobs": f32(to_np(lp) + 0.3 * rng.standard_normal(lp.shape)),
        "values": f32(to_np(values) + 0.3 * rng.standard_normal(um.B)),
        "returns": f32(to_np(values) + rng.standard_normal(um.B)),
        "advantages": f32(rng.standard_normal(um.B) * 2.0 + 0.5),
        "bc_noise": f32(rng.standard_normal((um.B, steps + 1, um.TA, um.DA))),
        "K": np.int64(K),
    }


def build(ctx: Context) -> None:
    import torch

    weights = {"ddpm": um.policy_params(ctx, 600), "ddim": um.policy_params(ctx, 610)}
    for kind, params in weights.items():
        ctx.case(f"weights_{kind}", {"kind": "weights"}, {f"param/{k}": v for k, v in params.items()}, {}, {})
    batches = {"ddpm": _batch(ctx, DDPM, weights["ddpm"], None, "batch_ddpm"),
               "ddim": _batch(ctx, DDIM, weights["ddim"], ETA, "batch_ddim")}
    for kind, batch in batches.items():
        ctx.case(f"batch_{kind}", {"kind": "batch"}, {k: v for k, v in batch.items() if k != "K"}, {}, {})

    for name, dc_kw, opts, eta in _grid():
        kind = "ddim" if dc_kw.get("use_ddim") else "ddpm"
        dc, params, batch = um.diffusion_config(**dc_kw), weights[kind], batches[kind]
        bc_noise = list(batch["bc_noise"].transpose(1, 0, 2, 3)) if opts["use_bc_loss"] else []

        def run(f64: bool, dc=dc, params=params, batch=batch, opts=opts, eta=eta) -> dict:
            ppo_kw = {k: opts[k] for k in ("norm_adv", "clip_advantage_lower_quantile",
                                            "clip_advantage_upper_quantile", "clip_vloss_coef")}
            model = um.ppo_diffusion(ctx, dc, DPPO, params, eta=eta, **ppo_kw)
            dt = torch.get_default_dtype()
            t = {k: torch.from_numpy(v).to(dt) for k, v in batch.items() if k not in ("K", "bc_noise")}
            pg, ent, v, clipfrac, kl, ratio, bc, eta_mean = model.loss(
                _ObsDict(state=t["obs"]), t["chains"], t["returns"], t["values"], t["advantages"], t["logprobs"],
                use_bc_loss=opts["use_bc_loss"], reward_horizon=REWARD_HORIZON)
            loss = pg + ENT_COEF * ent + VF_COEF * v + BC_COEF * bc
            named = [(n, p) for n, p in model.named_parameters() if n.startswith(("actor_ft.", "critic."))]
            grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
            out = {"pg_loss": to_np(pg), "entropy_loss": to_np(ent), "v_loss": to_np(v),
                   "clipfrac": np.float64(clipfrac), "approx_kl": np.float64(kl), "ratio": np.float64(ratio),
                   "bc_loss": to_np(torch.as_tensor(bc)), "loss": to_np(loss)}
            for (n, _), g in zip(named, grads):
                out[f"grad/{n}"] = np.zeros(1) if g is None else to_np(g)
            return out

        up32, up64 = ctx.double_run(run, bc_noise)
        meta = {"kind": "loss", "diffusion": um.config_meta(dc), "dppo": DPPO, "eta": eta, "weights": f"weights_{kind}",
                "batch": f"batch_{kind}", "options": opts, "gamma_denoising": 0.99, "clip_ploss_coef": 0.01,
                "clip_ploss_coef_base": 1e-3, "clip_ploss_coef_rate": 3.0, "reward_horizon": REWARD_HORIZON,
                "ent_coef": ENT_COEF, "vf_coef": VF_COEF, "bc_loss_coeff": BC_COEF}
        if opts["use_bc_loss"]:
            meta["note"] = BC_ADAPTER
        ctx.case(name, meta, {}, up32, up64)
