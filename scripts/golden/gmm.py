"""Section `gmm`: upstream's GMM policy. GMM_MLP's forward (model/common/mlp_gmm.py: means, scales, logits) for
the three ways it gives its std (learned head, fixed, learned fixed), GMMModel.loss (model/common/gmm.py, the
negative MixtureSameFamily log-likelihood TrainGaussianAgent pre-trains with) with its entropy and gradient,
GMMModel's sampling with injected draws, and PPO_GMM's loss terms (model/rl/gmm_ppo.py) with the total loss's
gradient w.r.t. the actor and the critic.

Injected draws: MixtureSameFamily.sample asks its Categorical for the modes and its Normal for (B, M, D) draws,
then gathers the chosen mode's. The generator makes Categorical.sample return the inverse-CDF mode of its own
probabilities at the case's uniforms u (B,) and Normal.sample return loc + scale * eps with the case's eps (B, D)
the same for every mode: upstream's own mixture code still does the choosing and gathering.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec import CriticObsConfig, critic_obs_spec, torch_default_init
from shared.param_spec.gmm_mlp import GMMMLPConfig, gmm_mlp_init_overrides, gmm_mlp_spec

B, TA, DA, TO, DO, M = 8, 2, 3, 2, 4, 3
NETWORKS = {
    # a learned std: clamped to [std_min, std_max] for some outputs (the init's logvars spread around 0)
    "learned_std": GMMMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16), num_modes=M, std_min=0.9, std_max=1.1,
                                activation_type="ReLU"),
    "fixed_std": GMMMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16, 16), num_modes=M, fixed_std=0.3,
                              residual_style=True),
    "learn_fixed_std": GMMMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16), num_modes=M, fixed_std=0.3,
                                    learn_fixed_std=True, std_min=0.01, std_max=0.4, use_layernorm=True),
}
# PPO_GMM's actors: stds near 0.3 (the learned head's logvars shifted there), so that the mixture log-probs of
# nearby chunks fall inside upstream's clamp [-5, 2] and carry a gradient
PPO_ACTORS = {
    "learned_std": dataclasses.replace(NETWORKS["learned_std"], std_min=0.25, std_max=0.35),
    "learn_fixed_std": NETWORKS["learn_fixed_std"],
}
LOGVAR_SHIFT = -2.4  # added to the learned head's output bias: logvar ~ log(0.3^2)
CRITIC = CriticObsConfig(TO * DO, mlp_dims=(16, 16))
ENT_COEF, VF_COEF, CLIP_PLOSS = 0.01, 0.5, 0.1


def logvar_offsets(cfg: GMMMLPConfig) -> np.ndarray:
    """Per-entry offsets added to a learned fixed std's log-variance, so some entries sit beyond the clamp."""
    n = cfg.action_dim * cfg.num_modes
    return np.linspace(-0.6, 1.2, n)


def _params(cfg: GMMMLPConfig, prefix: str, seed: int, critic: bool = False) -> dict:
    spec = gmm_mlp_spec(cfg, prefix)
    if critic:
        spec.update(critic_obs_spec(CRITIC, "critic."))
    params = torch_default_init(spec, seed, gmm_mlp_init_overrides(cfg, prefix))
    last = f"{prefix}mlp_logvar.moduleList.{len(cfg.mlp_dims)}.linear_1.bias"
    if critic and last in params:
        params[last] = f32(params[last] + LOGVAR_SHIFT)
    if f"{prefix}logvar" in params:  # log(0.3^2) + offsets: from below std 0.3 to above std_max 0.4
        params[f"{prefix}logvar"] = f32(params[f"{prefix}logvar"] + logvar_offsets(cfg))
    return params


def _upstream_network(cfg: GMMMLPConfig) -> object:
    from model.common.mlp_gmm import GMM_MLP

    return GMM_MLP(cfg.action_dim, cfg.horizon_steps, cond_dim=cfg.cond_dim, mlp_dims=list(cfg.mlp_dims),
                   num_modes=cfg.num_modes, activation_type=cfg.activation_type, residual_style=cfg.residual_style,
                   use_layernorm=cfg.use_layernorm, fixed_std=cfg.fixed_std, learn_fixed_std=cfg.learn_fixed_std,
                   std_min=cfg.std_min, std_max=cfg.std_max)


def _gmm_model(cfg: GMMMLPConfig, params: dict) -> object:
    from model.common.gmm import GMMModel

    model = GMMModel(_upstream_network(cfg), horizon_steps=cfg.horizon_steps, device="cpu")
    load_weights(model, params)
    return model


def _ppo_model(cfg: GMMMLPConfig, params: dict, **kw: object) -> object:
    from model.common.critic import CriticObs
    from model.rl.gmm_ppo import PPO_GMM

    critic = CriticObs(CRITIC.cond_dim, list(CRITIC.mlp_dims))
    model = PPO_GMM(actor=_upstream_network(cfg), critic=critic, horizon_steps=cfg.horizon_steps, device="cpu", **kw)
    # upstream's network and actor_ft are one module under two names: both are our actor
    load_weights(model, params, {"network.": "actor.", "actor_ft.": "actor."})
    return model


class _InjectedDraws:
    """Categorical.sample -> inverse-CDF modes at u; Normal.sample -> loc + scale * eps (eps the same per mode)."""

    def __init__(self, u: np.ndarray, eps: np.ndarray) -> None:
        self.u, self.eps = u, eps

    def __enter__(self) -> None:
        import torch
        import torch.distributions as D

        self.saved = D.Categorical.sample, D.Normal.sample
        u, eps = self.u, self.eps

        def categorical_sample(dist, sample_shape=torch.Size()):  # noqa: B008 (torch's own signature)
            cdf = dist.probs.cumsum(-1)  # (B, M)
            uu = torch.from_numpy(u).to(cdf.dtype)[:, None]
            return (cdf <= uu).sum(-1).clamp(max=cdf.shape[-1] - 1)

        def normal_sample(dist, sample_shape=torch.Size()):  # noqa: B008
            z = torch.from_numpy(eps).to(dist.loc.dtype)[:, None, :].expand_as(dist.loc)  # (B, M, D)
            return (dist.loc + dist.scale * z).detach()

        D.Categorical.sample, D.Normal.sample = categorical_sample, normal_sample

    def __exit__(self, *exc: object) -> None:
        import torch.distributions as D

        D.Categorical.sample, D.Normal.sample = self.saved


def _build_network_cases(ctx: Context) -> None:
    import torch

    for n, (name, cfg) in enumerate(NETWORKS.items()):
        params = _params(cfg, "network.", 1100 + n)
        rng = ctx.rng("gmm" + name)
        state = f32(rng.uniform(-1, 1, (B, TO, DO)))
        # actions near the modes' reach; a few rows far from every mode (the logsumexp's tail)
        actions = f32(np.clip(rng.normal(0, 0.6, (B, TA, DA)), -1, 1))
        actions[-1] = 0.95
        meta = {"network": dataclasses.asdict(cfg)}
        inputs = {"state": state, "actions": actions, **{f"param/{k}": v for k, v in params.items()}}

        def forward(f64: bool, cfg=cfg, params=params, state=state) -> dict:
            net = _gmm_model(cfg, params).network
            means, scales, logits = net({"state": torch.from_numpy(state).to(torch.get_default_dtype())})
            return {"means": to_np(means), "scales": to_np(scales), "logits": to_np(logits)}

        up32, up64 = ctx.double_run(forward)
        ctx.case(f"forward_{name}", {"kind": "forward", **meta}, inputs, up32, up64)

        def loss(f64: bool, cfg=cfg, params=params, state=state, actions=actions) -> dict:
            model = _gmm_model(cfg, params)
            dt = torch.get_default_dtype()
            value, info = model.loss(torch.from_numpy(actions).to(dt), {"state": torch.from_numpy(state).to(dt)},
                                     ent_coef=0.05)  # upstream ignores it
            named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
            grads = torch.autograd.grad(value, [p for _, p in named])
            return {"loss": to_np(value), "entropy": to_np(info["entropy"]),
                    **{f"grad/{k}": to_np(g) for (k, _), g in zip(named, grads)}}

        up32, up64 = ctx.double_run(loss)
        ctx.case(f"loss_{name}", {"kind": "loss", **meta}, inputs, up32, up64)

        u = rng.uniform(0, 1, B)
        u[:M] = np.linspace(0.02, 0.98, M)  # spread over the weights' range
        eps = f32(rng.standard_normal((B, TA * DA)))
        for det in (False, True):
            def sample(f64: bool, cfg=cfg, params=params, state=state, u=u, eps=eps, det=det) -> dict:
                model = _gmm_model(cfg, params)
                with _InjectedDraws(u, eps):
                    out = model({"state": torch.from_numpy(state).to(torch.get_default_dtype())}, deterministic=det)
                return {"actions": to_np(out)}

            up32, up64 = ctx.double_run(sample)
            ctx.case(f"sample_{name}_det{int(det)}", {"kind": "sample", "deterministic": det, **meta},
                     {**inputs, "u": u, "eps": eps}, up32, up64)


def _build_ppo_cases(ctx: Context) -> None:
    import torch

    for n, (name, cfg) in enumerate(PPO_ACTORS.items()):
        params = _params(cfg, "actor.", 1200 + n, critic=True)
        rng = ctx.rng("gmm_ppo" + name)
        obs = f32(rng.uniform(-1, 1, (B, TO, DO)))
        # chunks from the policy's modes plus noise, so the mixture log-probs spread across upstream's clamp
        # [-5, 2]: some rows inside (they carry the gradient), some beyond either end
        model = _ppo_model(cfg, params, clip_ploss_coef=CLIP_PLOSS)
        with torch.no_grad():
            means, _, _ = model.network({"state": torch.from_numpy(obs)})
        pick = rng.integers(0, M, B)
        spread = np.linspace(0.02, 0.5, B)[:, None]
        actions = f32(means.numpy()[np.arange(B), pick] + spread * rng.standard_normal((B, TA * DA)))
        actions = actions.reshape(B, TA, DA)
        with torch.no_grad():  # old log-probs near the current ones: some ratios inside the clip range, some out
            current, _, _ = model.get_logprobs({"state": torch.from_numpy(obs)}, torch.from_numpy(actions))
        batch = {"obs": obs, "actions": actions, "logprobs": f32(current.numpy() + rng.normal(0, 0.15, B)),
                 "values": f32(rng.standard_normal(B)), "returns": f32(rng.standard_normal(B)),
                 "advantages": f32(rng.standard_normal(B) * 2 + 0.3)}
        meta = {"actor": dataclasses.asdict(cfg), "critic": dataclasses.asdict(CRITIC), "clip_ploss_coef": CLIP_PLOSS,
                "ent_coef": ENT_COEF, "vf_coef": VF_COEF}
        inputs = {**batch, **{f"param/{k}": v for k, v in params.items()}}

        def logprobs(f64: bool, cfg=cfg, params=params, obs=obs, actions=actions) -> dict:
            model = _ppo_model(cfg, params, clip_ploss_coef=CLIP_PLOSS)
            dt = torch.get_default_dtype()
            lp, ent, std = model.get_logprobs({"state": torch.from_numpy(obs).to(dt)}, torch.from_numpy(actions).to(dt))
            return {"logprobs": to_np(lp), "entropy": to_np(ent), "std": to_np(std)}

        up32, up64 = ctx.double_run(logprobs)
        ctx.case(f"ppo_logprobs_{name}", {"kind": "ppo_logprobs", **meta}, inputs, up32, up64)

        for norm, vclip in itertools.product((True, False), (None, 0.2)):
            def run(f64: bool, cfg=cfg, params=params, batch=batch, norm=norm, vclip=vclip) -> dict:
                model = _ppo_model(cfg, params, clip_ploss_coef=CLIP_PLOSS, clip_vloss_coef=vclip, norm_adv=norm)
                dt = torch.get_default_dtype()
                t = {k: torch.from_numpy(v).to(dt) for k, v in batch.items()}
                pg, ent, v, clipfrac, kl, ratio, _, std = model.loss(
                    {"state": t["obs"]}, t["actions"], t["returns"], t["values"], t["advantages"], t["logprobs"])
                loss = pg + ENT_COEF * ent + VF_COEF * v
                named = [(k, p) for k, p in model.named_parameters()
                         if p.requires_grad and k.startswith(("network.", "critic."))]
                grads = torch.autograd.grad(loss, [p for _, p in named])
                out = {"pg_loss": to_np(pg), "entropy_loss": to_np(ent), "v_loss": to_np(v),
                       "clipfrac": np.float64(clipfrac), "approx_kl": np.float64(kl), "ratio": np.float64(ratio),
                       "std": np.float64(std)}
                for (k, _), g in zip(named, grads):  # network.* is actor_ft.*: our actor.*
                    out["grad/" + k.replace("network.", "actor.", 1)] = to_np(g)
                return out

            up32, up64 = ctx.double_run(run)
            ctx.case(f"ppo_loss_{name}_norm{int(norm)}_vclip{int(vclip is not None)}",
                     {"kind": "ppo_loss", "norm_adv": norm, "clip_vloss_coef": vclip, **meta}, inputs, up32, up64)


SHIPPED = "tests/fixtures/upstream_cfg/cfg/robomimic"  # upstream's GMM_MLP configs (gym ships none)


def shipped_gmm_sections() -> dict[str, dict]:
    """{config path: its GMM_MLP section} of every vendored upstream config that builds one (resolved)."""
    from pathlib import Path

    from shared.config.loading import load_config

    out = {}
    for path in sorted(Path(SHIPPED).glob("*/*/*.yaml")):
        model = load_config(path).get("model", {})
        for key in ("network", "actor"):
            section = model.get(key)
            if isinstance(section, dict) and section.get("_target_") in GMMMLPConfig.UPSTREAM_TARGETS:
                out[str(path)] = {k: v for k, v in section.items() if k != "_target_"}
    return out


def _build_state_dict_cases(ctx: Context) -> None:
    """Upstream GMM_MLP's state_dict names and shapes for every shipped config (no numbers: the spec test)."""
    for n, (path, section) in enumerate(shipped_gmm_sections().items()):
        from model.common.mlp_gmm import GMM_MLP

        state = GMM_MLP(**section).state_dict()
        shapes = {k: list(v.shape) for k, v in state.items()}
        ctx.case(f"state_dict_{n}", {"kind": "state_dict", "config": path, "section": section, "shapes": shapes},
                 {}, {})


def build(ctx: Context) -> None:
    _build_network_cases(ctx)
    _build_ppo_cases(ctx)
    _build_state_dict_cases(ctx)
