"""Section `gaussian`: upstream PPO_Gaussian (model/rl/gaussian_ppo.py) sampling with injected noise,
loss terms and total-loss gradients w.r.t. the trained actor and the critic.

Upstream samples with torch.distributions.Normal(loc, scale).sample(); the generator replaces
`D` inside model.common.gaussian so that sample() returns loc + scale * z with z popped from the
noise queue (shape (B, Ta * Da), as our twins take it).
"""

from __future__ import annotations

import dataclasses
import itertools
import types

import numpy as np

from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec import CriticObsConfig, GaussianMLPConfig, critic_obs_spec, gaussian_mlp_spec, torch_default_init

B, TA, DA, TO, DO = 8, 2, 3, 1, 4
RANDN_CLIP = 2.0
ACTORS = {
    "learned_std": GaussianMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16), std_min=0.05, std_max=0.6),
    "learn_fixed_std": GaussianMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16), fixed_std=0.3, learn_fixed_std=True),
}
CRITIC = CriticObsConfig(TO * DO, mlp_dims=(16, 16))
ENT_COEF, VF_COEF = 0.01, 0.5
PREFIXES = {"actor_ft.": "actor.", "network.": "actor.", "actor.": "actor."}


def _inject_normal(ctx: Context) -> None:
    import model.common.gaussian as g
    import torch
    import torch.distributions as dist

    class InjectedNormal(dist.Normal):
        def sample(self, sample_shape=torch.Size()):  # noqa: B008 (torch's own signature)
            z = ctx.queue.popleft()
            assert tuple(z.shape) == tuple(self.loc.shape), (z.shape, self.loc.shape)
            return self.loc + self.scale * torch.from_numpy(np.array(z)).to(self.loc.dtype)

    g.D = types.SimpleNamespace(Normal=InjectedNormal)


def _model(ctx: Context, cfg: GaussianMLPConfig, params: dict, **kw: object) -> object:
    from model.common.critic import CriticObs
    from model.common.mlp_gaussian import Gaussian_MLP
    from model.rl.gaussian_ppo import PPO_Gaussian

    _inject_normal(ctx)
    actor = Gaussian_MLP(cfg.action_dim, cfg.horizon_steps, cfg.cond_dim, mlp_dims=list(cfg.mlp_dims),
                         fixed_std=cfg.fixed_std, learn_fixed_std=cfg.learn_fixed_std, std_min=cfg.std_min,
                         std_max=cfg.std_max)
    critic = CriticObs(CRITIC.cond_dim, list(CRITIC.mlp_dims))
    model = PPO_Gaussian(actor=actor, critic=critic, horizon_steps=TA, device="cpu", randn_clip_value=RANDN_CLIP,
                         **kw)
    load_weights(model, params, PREFIXES)
    return model


def build(ctx: Context) -> None:
    import torch

    for a, (aname, cfg) in enumerate(ACTORS.items()):
        overrides = {"actor.logvar": float(np.log(cfg.fixed_std**2))} if cfg.learn_fixed_std else None
        spec = gaussian_mlp_spec(cfg, "actor.")
        spec.update(critic_obs_spec(CRITIC, "critic."))
        params = torch_default_init(spec, 700 + a, overrides)
        rng = ctx.rng("gauss" + aname)
        obs = f32(rng.uniform(-1, 1, (B, TO, DO)))
        noise = f32(rng.standard_normal((B, TA * DA)) * 1.5)  # some beyond RANDN_CLIP
        ctx.case(f"weights_{aname}", {"kind": "weights", "actor": dataclasses.asdict(cfg),
                                      "critic": dataclasses.asdict(CRITIC), "randn_clip_value": RANDN_CLIP},
                 {"obs": obs, "noise": noise, **{f"param/{k}": v for k, v in params.items()}}, {}, {})

        for det in (False, True):
            def run(f64: bool, cfg=cfg, params=params, obs=obs, det=det) -> dict:
                model = _model(ctx, cfg, params, clip_ploss_coef=0.1)
                s = {"state": torch.from_numpy(obs).to(torch.get_default_dtype())}
                return {"actions": to_np(model(s, deterministic=det))}

            up32, up64 = ctx.double_run(run, [noise])
            ctx.case(f"sample_{aname}_det{int(det)}", {"kind": "sample", "weights": f"weights_{aname}",
                                                       "deterministic": det}, {}, up32, up64)

        # a minibatch: actions near the policy, old log-probs and values perturbed
        actions = f32(up32["actions"] + 0.1 * rng.standard_normal(up32["actions"].shape))
        batch = {"actions": actions, "logprobs": f32(rng.standard_normal(B) * 0.5 - 0.5),
                 "values": f32(rng.standard_normal(B)), "returns": f32(rng.standard_normal(B)),
                 "advantages": f32(rng.standard_normal(B) * 2 + 0.3)}
        for norm, vclip in itertools.product((True, False), (None, 0.2)):
            name = f"loss_{aname}_norm{int(norm)}_vclip{int(vclip is not None)}"

            def run(f64: bool, cfg=cfg, params=params, obs=obs, batch=batch, norm=norm, vclip=vclip) -> dict:
                model = _model(ctx, cfg, params, clip_ploss_coef=0.1, clip_vloss_coef=vclip, norm_adv=norm)
                dt = torch.get_default_dtype()
                t = {k: torch.from_numpy(v).to(dt) for k, v in batch.items()}
                pg, ent, v, clipfrac, kl, ratio, _, std = model.loss(
                    {"state": torch.from_numpy(obs).to(dt)}, t["actions"], t["returns"], t["values"],
                    t["advantages"], t["logprobs"])
                loss = pg + ENT_COEF * ent + VF_COEF * v
                named = [(n, p) for n, p in model.named_parameters()
                         if p.requires_grad and n.startswith(("network.", "actor_ft.", "critic."))]
                grads = torch.autograd.grad(loss, [p for _, p in named])
                out = {"pg_loss": to_np(pg), "entropy_loss": to_np(ent), "v_loss": to_np(v),
                       "clipfrac": np.float64(clipfrac), "approx_kl": np.float64(kl), "ratio": np.float64(ratio),
                       "std": np.float64(std), "loss": to_np(loss)}
                for (n, _), g in zip(named, grads):
                    # the trained actor is upstream's network (= actor_ft, one module under two names): ours is actor.*
                    name = n.replace("network.", "actor.", 1).replace("actor_ft.", "actor.", 1)
                    out["grad/" + name] = to_np(g)
                return out

            up32, up64 = ctx.double_run(run)
            ctx.case(name, {"kind": "loss", "weights": f"weights_{aname}", "norm_adv": norm, "clip_vloss_coef": vclip,
                            "clip_ploss_coef": 0.1, "ent_coef": ENT_COEF, "vf_coef": VF_COEF}, batch, up32, up64)
