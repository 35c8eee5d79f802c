"""Section `ppo_exact`: upstream PPOExactDiffusion's exact log-likelihood (get_exact_logprobs: torchdiffeq's
Euler steps along the VP-SDE drift, Hutchinson divergence) and every term of its PPO loss with the gradients
of pg_loss + vf_coef * v_loss w.r.t. actor_ft.* and critic.*, on a fixed batch with fixed probes.

The probes are injected as upstream's torch.randint draws (0/1, which upstream maps to -1/+1): one set for
scoring, one for the loss. In the float64 run the VP-SDE's betas are re-set from upstream's own
cosine_beta_schedule in float64 (DiffusionModel builds them in float32 whatever the default dtype), so that
run is a float64 reference all the way.

torchdiffeq imports scipy.integrate.solve_ivp for its scipy_solver method at import time; where scipy is
not installed it is stubbed (the Euler method never calls it).
"""

from __future__ import annotations

import numpy as np

from scripts.golden import upstream_models as um
from scripts.golden.common import Context, f32, stub_module, to_np

VF_COEF = 0.5
E = 2  # sde_num_epsilon

# upstream's shipped options (ft_ppo_exact_diffusion_mlp.yaml), and the other branches: x0 prediction, the
# reverse SDE's drift (probability_flow false), value clipping, unnormalised advantages, a coarser grid
CASES = {
    "shipped": dict(diffusion=dict(denoising_steps=20), ft_denoising_steps=10,
                    exact=dict(sde_step_size=0.05, sde_min_beta=1e-10, sde_probability_flow=True),
                    ppo=dict(clip_ploss_coef=0.01, clip_vloss_coef=None, norm_adv=True)),
    "x0_reverse_sde": dict(diffusion=dict(denoising_steps=10, predict_epsilon=False), ft_denoising_steps=4,
                           exact=dict(sde_step_size=0.1, sde_min_beta=1e-2, sde_probability_flow=False),
                           ppo=dict(clip_ploss_coef=0.02, clip_vloss_coef=0.2, norm_adv=False)),
}


def build(ctx: Context) -> None:
    import torch

    stub_module("scipy")
    stub_module("scipy.integrate", solve_ivp=None)
    ctx.inject("model.diffusion.diffusion", "model.diffusion.diffusion_vpg", "model.diffusion.exact_likelihood")
    from model.common.critic import CriticObs
    from model.diffusion.diffusion_ppo_exact import PPOExactDiffusion
    from model.diffusion.sampling import cosine_beta_schedule
    from model.diffusion.sde_lib import VPSDE

    for name, case in CASES.items():
        dc = um.diffusion_config(**case["diffusion"])
        params = um.policy_params(ctx, 700 + len(name))
        rng = ctx.rng(f"ppo_exact_{name}")
        state = f32(rng.uniform(-1, 1, (um.B, um.TO, um.DO)))
        samples = f32(rng.uniform(-1, 1, (um.B, um.TA, um.DA)))
        bits = [rng.integers(0, 2, (um.B * E, um.TA, um.DA)) for _ in range(2)]  # scoring, loss
        batch = {"returns": f32(rng.standard_normal(um.B)), "values": f32(rng.standard_normal(um.B)),
                 "advantages": f32(rng.standard_normal(um.B) * 2.0 + 0.5)}
        oldlogprob_offset = f32(rng.normal(0.0, 0.01, um.B))

        def run(f64: bool, dc=dc, case=case, params=params, state=state, samples=samples, batch=batch,
                offset=oldlogprob_offset) -> dict:
            critic = CriticObs(um.CRITIC.cond_dim, list(um.CRITIC.mlp_dims), activation_type=um.CRITIC.activation_type)
            ex = case["exact"]
            model = PPOExactDiffusion(
                sde=VPSDE(N=dc.denoising_steps), actor=um._network(), critic=critic,
                ft_denoising_steps=case["ft_denoising_steps"], min_sampling_denoising_std=0.1,
                min_logprob_denoising_std=0.1, sde_hutchinson_type="Rademacher", sde_step_size=ex["sde_step_size"],
                sde_method="euler", sde_num_epsilon=E, sde_min_beta=ex["sde_min_beta"],
                sde_probability_flow=ex["sde_probability_flow"], **case["ppo"], **um._model_kwargs(dc))
            um.load_weights(model, params, {"network.": "actor."})
            if f64:
                model.sde.set_betas(cosine_beta_schedule(dc.denoising_steps, dtype=torch.float64),
                                    ex["sde_min_beta"])
            dt = torch.get_default_dtype()
            cond = {"state": torch.from_numpy(state).to(dt)}
            x = torch.from_numpy(samples).to(dt)
            with torch.no_grad():
                logprobs = model.get_exact_logprobs(cond, x)
            t = {k: torch.from_numpy(v).to(dt) for k, v in batch.items()}
            old = logprobs + torch.from_numpy(offset).to(dt)
            pg, v, clipfrac, kl, ratio, _ = model.loss(cond, x, t["returns"], t["values"], t["advantages"], old)
            loss = pg + VF_COEF * v
            named = [(n, p) for n, p in model.named_parameters() if n.startswith(("actor_ft.", "critic."))]
            grads = torch.autograd.grad(loss, [p for _, p in named])
            out = {"logprobs": to_np(logprobs), "pg_loss": to_np(pg), "v_loss": to_np(v),
                   "clipfrac": np.float64(clipfrac), "approx_kl": np.float64(kl), "ratio": np.float64(ratio)}
            out.update({f"grad/{n}": to_np(g) for (n, _), g in zip(named, grads)})
            return out

        up32, up64 = ctx.double_run(run, bits)
        meta = {"kind": "ppo_exact", "diffusion": um.config_meta(dc), "critic": dict(um.CRITIC.__dict__),
                "ft_denoising_steps": case["ft_denoising_steps"], "sde_eps": 1e-4, "sde_num_epsilon": E,
                "sde_hutchinson_type": "Rademacher", **case["exact"], **case["ppo"], "vf_coef": VF_COEF,
                "note": "old log-probs = upstream's own scoring + offset; probes: upstream's randint bits, "
                        "-1/+1 = 2 * bit - 1"}
        inputs = {"state": state, "samples": samples, **batch, "oldlogprob_offset": oldlogprob_offset,
                  "probe_bits_score": bits[0], "probe_bits_loss": bits[1],
                  **{f"param/{k}": v for k, v in params.items()}}
        ctx.case(name, meta, inputs, up32, up64)
