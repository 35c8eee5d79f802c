"""Section `gaussian_pretrain`: upstream GaussianModel.loss (model/common/gaussian.py, the loss
TrainGaussianAgent pre-trains with) and its gradient w.r.t. the network, for the three ways Gaussian_MLP
gives its std (a learned head, a fixed value, a learned fixed value), with and without the entropy bonus."""

from __future__ import annotations

import dataclasses
import math

from scripts.golden.common import Context, f32, load_weights, to_np
from shared.param_spec import GaussianMLPConfig, gaussian_mlp_spec, torch_default_init

B, TA, DA, TO, DO = 8, 2, 3, 2, 4
NETWORKS = {
    "learned_std": GaussianMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16), std_min=0.05, std_max=0.6,
                                     residual_style=True, activation_type="ReLU"),
    "fixed_std": GaussianMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16, 16), fixed_std=0.1),
    "learn_fixed_std": GaussianMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16), fixed_std=0.3, learn_fixed_std=True,
                                         use_layernorm=True),
    # robomimic's pre_gaussian_mlp / ft_ppo_gaussian_mlp: a residual mean MLP with a (learned) fixed std
    "residual_fixed_std": GaussianMLPConfig(DA, TA, TO * DO, mlp_dims=(16, 16, 16), residual_style=True,
                                            fixed_std=0.1, learn_fixed_std=True, std_max=0.2),
}
ENT_COEFS = (0.0, 0.05)


def _accept_zero_dropout() -> None:
    """Upstream's Gaussian_MLP hands ResidualMLP `dropout=` for a residual mean MLP with a fixed std, an
    argument ResidualMLP does not take (a TypeError at the pinned commit, so robomimic's Gaussian configs do
    not build there). Let ResidualMLP take dropout=0, which is what those configs mean, and nothing else."""
    import model.common.mlp_gaussian as mg
    from model.common.mlp import ResidualMLP

    class ResidualMLPTakingZeroDropout(ResidualMLP):
        def __init__(self, *args, dropout: float = 0.0, **kwargs) -> None:
            assert dropout == 0, "only dropout=0 is what a residual Gaussian_MLP means"
            super().__init__(*args, **kwargs)

    mg.ResidualMLP = ResidualMLPTakingZeroDropout


def _upstream_model(cfg: GaussianMLPConfig, params: dict) -> object:
    from model.common.gaussian import GaussianModel
    from model.common.mlp_gaussian import Gaussian_MLP

    if cfg.residual_style and cfg.fixed_std is not None:
        _accept_zero_dropout()
    network = Gaussian_MLP(cfg.action_dim, cfg.horizon_steps, cfg.cond_dim, mlp_dims=list(cfg.mlp_dims),
                           activation_type=cfg.activation_type, tanh_output=cfg.tanh_output,
                           residual_style=cfg.residual_style, use_layernorm=cfg.use_layernorm,
                           fixed_std=cfg.fixed_std, learn_fixed_std=cfg.learn_fixed_std, std_min=cfg.std_min,
                           std_max=cfg.std_max)
    model = GaussianModel(network, horizon_steps=cfg.horizon_steps, device="cpu")
    load_weights(model, params)
    return model


def build(ctx: Context) -> None:
    import torch

    for n, (name, cfg) in enumerate(NETWORKS.items()):
        overrides = {"network.logvar": math.log(cfg.fixed_std**2) + 0.2} if cfg.learn_fixed_std else None
        params = torch_default_init(gaussian_mlp_spec(cfg, "network."), 900 + n, overrides)
        rng = ctx.rng("gaussian_pretrain" + name)
        actions = f32(rng.uniform(-1, 1, (B, TA, DA)))
        state = f32(rng.uniform(-1, 1, (B, TO, DO)))
        for ent_coef in ENT_COEFS:

            def run(f64: bool, cfg=cfg, params=params, actions=actions, state=state, ent_coef=ent_coef) -> dict:
                model = _upstream_model(cfg, params)
                dt = torch.get_default_dtype()
                loss, info = model.loss(torch.from_numpy(actions).to(dt), {"state": torch.from_numpy(state).to(dt)},
                                        ent_coef=ent_coef)
                named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
                grads = torch.autograd.grad(loss, [p for _, p in named])
                return {"loss": to_np(loss), "entropy": to_np(info["entropy"]),
                        **{f"grad/{k}": to_np(g) for (k, _), g in zip(named, grads)}}

            up32, up64 = ctx.double_run(run)
            ctx.case(f"loss_{name}_ent{ent_coef:g}", {"kind": "loss", "network": dataclasses.asdict(cfg),
                                                      "ent_coef": ent_coef},
                     {"actions": actions, "state": state, **{f"param/{k}": v for k, v in params.items()}},
                     up32, up64)
