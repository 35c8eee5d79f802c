"""Exact-likelihood DPPO (upstream PPOExactDiffusion), torch side: DPPO's sampler and networks, with PPO's
ratio taken on the final action chunk's log-likelihood from the probability-flow ODE.

Shapes: B chunks, E Hutchinson probes per chunk, Ta horizon, Da action dim, To history, Do obs dim,
D = Ta * Da. The per-step coefficients and the probes come from shared/diffusion/exact_likelihood.py.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from core_torch.algorithms.ppo_agent import PPOAgent
from core_torch.algorithms.ppo_diffusion import PPODiffusionModel
from core_torch.algorithms.ppo_loss import clipped_policy_loss, normalize_advantages, value_loss
from core_torch.networks.diffusion_mlp import DiffusionMLP
from core_torch.runtime.canonical import load_state
from core_torch.runtime.precision import tensor
from shared.diffusion.exact_likelihood import ProbeSource, bits_per_dim_scale, prior_log_norm
from shared.param_spec import CriticObsConfig
from shared.precision import as_compute
from shared.settings import DiffusionConfig, DPPOSettings, ExactLikelihoodSettings, PPOSettings


class PPOExactDiffusionModel(PPODiffusionModel):
    """PPODiffusionModel (actor, actor_ft, critic, sampler) plus `exact_logprobs`."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, d: DPPOSettings,
                 exact: ExactLikelihoodSettings) -> None:
        super().__init__(dc, critic, d)
        self.exact = exact
        plan = exact.plan()
        self.ode_steps = plan.num_steps
        self.ode_use_ft = [bool(u) for u in plan.use_ft]
        self.ode_t = torch.from_numpy(plan.timesteps)  # (M,)
        self.ode_dt, self.ode_x_coef, self.ode_out_coef = tensor(plan.dts), tensor(plan.x_coef), tensor(plan.out_coef)

    def _drift(self, net: DiffusionMLP, x: torch.Tensor, t_emb: torch.Tensor, cond: torch.Tensor,
               m: int) -> torch.Tensor:
        """f(x) = x_coef x + out_coef net(x) at Euler step m.  x (N, Ta, Da) -> (N, Ta, Da)"""
        return self.ode_x_coef[m] * x + self.ode_out_coef[m] * net.denoise(x, t_emb, cond)

    def _divergence(self, x: torch.Tensor, t_emb: torch.Tensor, cond_rep: torch.Tensor, probes: torch.Tensor,
                    m: int, create_graph: bool) -> torch.Tensor:
        """Hutchinson estimate of div f for the base actor's drift, averaged over the E probes of each chunk.

        x (B, Ta, Da), cond_rep (B*E, C), probes (B*E, Ta, Da) -> (B,): mean_e v_e . (df/dx)^T v_e.
        create_graph keeps the estimate differentiable in x (the update backpropagates through it)."""
        B = x.shape[0]
        with torch.enable_grad():
            xr = x.repeat_interleave(probes.shape[0] // B, dim=0)  # (B*E, Ta, Da), row b*E + e
            if not xr.requires_grad:
                xr.requires_grad_(True)
            f = self._drift(self.actor, xr, t_emb, cond_rep, m)
            (grad,) = torch.autograd.grad((f * probes).sum(), xr, create_graph=create_graph)
        return (grad * probes).sum(dim=(1, 2)).reshape(B, -1).mean(dim=1)

    def exact_logprobs(self, state: torch.Tensor, actions: torch.Tensor, probes: torch.Tensor) -> torch.Tensor:
        """log p(actions | state) in bits per dimension, by Euler steps of the ODE from t = eps to 1.

        state (B, To, Do), actions (B, Ta, Da), probes (B*E, Ta, Da) -> (B,). Differentiable in actor_ft
        when grad mode is on (the drift of the steps with use_ft, and everything downstream of them)."""
        create_graph = torch.is_grad_enabled()
        B, Ta, Da = actions.shape
        E = probes.shape[0] // B
        t_base, t_ft = self.actor.time_embedding(self.ode_t), self.actor_ft.time_embedding(self.ode_t)  # (M, time)
        cond_base, cond_ft = self.actor.condition(state), self.actor_ft.condition(state)  # (B, C)
        cond_rep = cond_base.repeat_interleave(E, dim=0)  # (B*E, C)
        x, delta = actions, torch.zeros(B, dtype=actions.dtype)
        for m in range(self.ode_steps):
            ft = self.ode_use_ft[m]
            net, t_emb, cond = (self.actor_ft, t_ft, cond_ft) if ft else (self.actor, t_base, cond_base)
            f = self._drift(net, x, t_emb[m : m + 1], cond, m)
            div = self._divergence(x, t_base[m : m + 1], cond_rep, probes, m, create_graph)
            x, delta = x + self.ode_dt[m] * f, delta + self.ode_dt[m] * div
        D = Ta * Da
        prior = prior_log_norm(D) - (x**2).sum(dim=(1, 2)) / 2.0  # log N(z; 0, I), z = x(1)
        return (prior + delta) * bits_per_dim_scale(D)


class PPOExactDiffusionAgent(PPOAgent):
    """act / evaluate / update on numpy arrays for exact-likelihood DPPO."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, settings: PPOSettings, d: DPPOSettings,
                 exact: ExactLikelihoodSettings, init_params: OrderedDict) -> None:
        model = PPOExactDiffusionModel(dc, critic, d, exact)
        load_state(model, init_params)
        model.check_fixed_eta()
        super().__init__(model, "actor_ft.", settings)
        self.probes = ProbeSource(exact.num_epsilon, dc.horizon_steps, dc.action_dim, exact.hutchinson_type)

    def seed_rng(self, seed: int) -> None:
        super().seed_rng(seed)
        self.probes.reseed(seed)

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """DPPO's sampler; only the final chunk is kept (the likelihood needs no chain)."""
        actions, _ = self.model.sample(torch.from_numpy(obs), torch.from_numpy(noise), deterministic)
        return {"actions": actions.numpy()}

    @torch.no_grad()
    def evaluate(self, obs: np.ndarray, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), exact log-likelihoods (N,)) of the rollout's chunks, with fresh probes."""
        o = torch.from_numpy(obs)
        probes = torch.from_numpy(as_compute(self.probes.draw(ProbeSource.SCORE, len(obs))))
        return (self.model.critic(o).reshape(-1).numpy(),
                self.model.exact_logprobs(o, torch.from_numpy(sample["actions"]), probes).numpy())

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> np.ndarray:
        return self.model.critic(torch.from_numpy(obs)).reshape(-1).numpy()

    def update(self, batch: dict[str, np.ndarray], update_actor: bool,
               minibatch: int | None = None) -> dict[str, float]:
        """PPOAgent.update with this minibatch's probes added to the batch."""
        probes = as_compute(self.probes.draw(ProbeSource.UPDATE, len(batch["obs"])))
        return super().update({**batch, "probes": probes}, update_actor, minibatch)

    def loss_terms(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Upstream PPOExactDiffusion.loss: one clipped ratio per chunk, advantages normalised, no entropy."""
        s = self.settings
        newlogprobs = self.model.exact_logprobs(b["obs"], b["actions"], b["probes"])
        adv = normalize_advantages(b["advantages"]) if s.norm_adv else b["advantages"]
        pg_loss, approx_kl, clipfrac = clipped_policy_loss(newlogprobs, b["logprobs"], adv, s.clip_ploss_coef)
        v_loss = value_loss(self.model.critic(b["obs"]).reshape(-1), b["returns"], b["values"], s.clip_vloss_coef)
        return {"pg_loss": pg_loss, "v_loss": v_loss, "approx_kl": approx_kl, "clipfrac": clipfrac}
