"""DPPO: a diffusion policy fine-tuned with PPO over the environment x denoising MDP (torch side).

Shapes: B env samples, K fine-tuned denoising steps, S all reverse steps, Ta horizon,
Da action dim, To history, Do obs dim.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from core_torch.canonical import load_state
from core_torch.critic import CriticObs
from core_torch.diffusion import reverse_mean, step_tensors
from core_torch.diffusion_mlp import DiffusionMLP
from core_torch.linear import MIN_ROWS
from core_torch.ppo_agent import PPOAgent
from core_torch.ppo_loss import (
    LOGPROB_MAX,
    LOGPROB_MIN,
    clip_advantages,
    clipped_policy_loss,
    normal_logprob,
    normalize_advantages,
    value_loss,
)
from shared.finetune_config import DPPOSettings, PPOSettings
from shared.model_config import DiffusionConfig
from shared.param_spec import CriticObsConfig
from shared.ppo_math import clip_coefficients, denoising_discount
from shared.sampling_plan import SamplingPlan, finetune_tables, sampling_plan

_COEFS = ("recon_x", "recon_eps", "mean_x0", "mean_xt")


def _f32(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float32))


class PPODiffusionModel(nn.Module):
    """Frozen base `actor`, fine-tuned copy `actor_ft` (last K steps only), `critic`."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, d: DPPOSettings) -> None:
        super().__init__()
        self.dc, self.d = dc, d
        self.actor = DiffusionMLP.from_config(dc.network).requires_grad_(False)
        self.actor_ft = DiffusionMLP.from_config(dc.network)
        self.critic = CriticObs.from_config(critic)
        steps = dc.ddim_steps if dc.use_ddim else dc.denoising_steps
        self.num_steps = steps

        def plan(deterministic: bool) -> SamplingPlan:
            return sampling_plan(dc.denoising_steps, dc.use_ddim, dc.ddim_steps, d.ddim_eta, deterministic,
                                 d.min_sampling_denoising_std)

        self.plans = {det: plan(det) for det in (True, False)}
        self.step_coefs = {det: step_tensors(p) for det, p in self.plans.items()}
        self.step_timesteps = {det: torch.from_numpy(p.timesteps) for det, p in self.plans.items()}  # (S,)
        ft = finetune_tables(self.plans[False], d.ft_denoising_steps, d.min_logprob_denoising_std)
        self.ft_t = torch.from_numpy(ft.timesteps)  # (K,)
        self.ft_coefs = {k: _f32(getattr(ft, k)) for k in _COEFS}  # each (K,)
        self.ft_std = _f32(ft.logprob_std)

    @torch.no_grad()
    def sample(self, state: torch.Tensor, noise: torch.Tensor, deterministic: bool,
               use_base_policy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """state (B, To, Do), noise (S+1, B, Ta, Da) -> actions (B, Ta, Da), chain (B, K+1, Ta, Da).

        Steps before the last K run the base actor only; the last K run actor_ft (or the base
        actor when use_base_policy), so no network output is computed and thrown away.
        """
        K, S = self.d.ft_denoising_steps, self.num_steps
        ft_net = self.actor if use_base_policy else self.actor_ft
        steps = self.step_timesteps[deterministic]
        base_in = (self.actor.time_embedding(steps), self.actor.condition(state))  # once per chain
        ft_in = (ft_net.time_embedding(steps), ft_net.condition(state))
        z = noise[1:].clamp(-self.dc.randn_clip_value, self.dc.randn_clip_value)  # (S, B, Ta, Da)
        x = noise[0]
        chain = [x] if K == S else []
        for i, coefs in enumerate(self.step_coefs[deterministic]):
            net, (t_embs, cond) = (self.actor, base_in) if i < S - K else (ft_net, ft_in)
            mean = reverse_mean(x, net.denoise(x, t_embs[i : i + 1], cond), coefs, self.dc.predict_epsilon,
                                self.dc.denoised_clip_value)
            x = mean + coefs["std"] * z[i]
            if i == S - 1 and self.dc.final_action_clip_value is not None:
                x = x.clamp(-self.dc.final_action_clip_value, self.dc.final_action_clip_value)
            if i >= S - K - 1:
                chain.append(x)
        return x, torch.stack(chain, dim=1)

    def logprobs(self, state: torch.Tensor, chains: torch.Tensor) -> torch.Tensor:
        """Log-density of every fine-tuned transition chain[j] -> chain[j+1] under actor_ft.  (B, K, Ta, Da)"""
        B, K1, Ta, Da = chains.shape
        K = K1 - 1
        prev = chains[:, :-1].reshape(B * K, Ta, Da)
        nxt = chains[:, 1:].reshape(B * K, Ta, Da)
        s = state.repeat_interleave(K, dim=0)  # (B*K, To, Do), row b*K + j
        t = self.ft_t.repeat(B)
        coefs = {k: v.repeat(B)[:, None, None] for k, v in self.ft_coefs.items()}
        mean = reverse_mean(prev, self.actor_ft(prev, t, s), coefs, self.dc.predict_epsilon,
                            self.dc.denoised_clip_value)
        std = self.ft_std.repeat(B)[:, None, None]
        return normal_logprob(nxt, mean, std).reshape(B, K, Ta, Da)


class PPODiffusionAgent(PPOAgent):
    """act / evaluate / update on numpy arrays for DPPO."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, settings: PPOSettings, d: DPPOSettings,
                 init_params: OrderedDict) -> None:
        model = PPODiffusionModel(dc, critic, d)
        load_state(model, init_params)
        super().__init__(model, "actor_ft.", settings)
        K = d.ft_denoising_steps
        self.discount = _f32(denoising_discount(K, d.gamma_denoising))  # (K,)
        self.clip_coefs = _f32(clip_coefficients(K, settings.clip_ploss_coef, d.clip_ploss_coef_base,
                                                 d.clip_ploss_coef_rate))  # (K,)
        self.compile_small_batches = os.environ.get("DPPO_TORCH_COMPILE", "0") == "1"
        self._compiled_sample: Callable | None = None  # made on first use (importing dynamo takes ~1 s)

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """Below MIN_ROWS rows the chain is bound by per-op dispatch, so with compile_small_batches
        (DPPO_TORCH_COMPILE=1) it runs through torch.compile: 1.7x faster at batch 1, after a
        ~13 s compile per batch size. Larger batches gain more from oneDNN's matmuls (core_torch/
        linear.py), which inductor cannot call, so they stay eager."""
        state, noise_t = torch.from_numpy(obs), torch.from_numpy(noise)
        if obs.shape[0] < MIN_ROWS and self.compile_small_batches:
            if self._compiled_sample is None:
                self._compiled_sample = torch.compile(self.model.sample, dynamic=False)
            try:
                actions, chains = self._compiled_sample(state, noise_t, deterministic)
                return {"actions": actions.numpy(), "chains": chains.numpy()}
            except torch._dynamo.exc.BackendCompilerFailed as e:  # e.g. no C++ compiler on this machine
                warnings.warn(f"torch.compile failed ({str(e).splitlines()[0]}); sampling eagerly", stacklevel=3)
                self.compile_small_batches = False
        actions, chains = self.model.sample(state, noise_t, deterministic)
        return {"actions": actions.numpy(), "chains": chains.numpy()}

    @torch.no_grad()
    def evaluate(self, obs: np.ndarray, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), log-probs (N, K, Ta, Da)) of the rollout's chains under the current actor_ft."""
        o = torch.from_numpy(obs)
        return (self.model.critic(o).reshape(-1).numpy(),
                self.model.logprobs(o, torch.from_numpy(sample["chains"])).numpy())

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> np.ndarray:
        return self.model.critic(torch.from_numpy(obs)).reshape(-1).numpy()

    def _mean_logprob(self, logprobs: torch.Tensor) -> torch.Tensor:
        """Clamp element-wise, keep the executed actions (reward_horizon), average: (B, K, Ta, Da) -> (B*K,)."""
        h = self.model.d.reward_horizon
        return logprobs.clamp(LOGPROB_MIN, LOGPROB_MAX)[:, :, :h].mean(dim=(-1, -2)).reshape(-1)

    def loss_terms(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        s, K = self.settings, self.model.d.ft_denoising_steps
        B = b["obs"].shape[0]
        newlogprobs = self._mean_logprob(self.model.logprobs(b["obs"], b["chains"]))
        oldlogprobs = self._mean_logprob(b["logprobs"])
        adv = b["advantages"]
        if s.norm_adv:
            adv = normalize_advantages(adv)
        adv = clip_advantages(adv, s.clip_advantage_lower_quantile, s.clip_advantage_upper_quantile)
        adv = adv.repeat_interleave(K) * self.discount.repeat(B)  # (B*K,), row b*K + j
        pg_loss, approx_kl, clipfrac = clipped_policy_loss(newlogprobs, oldlogprobs, adv, self.clip_coefs.repeat(B))
        v_loss = value_loss(self.model.critic(b["obs"]).reshape(-1), b["returns"], b["values"], s.clip_vloss_coef)
        terms = {"pg_loss": pg_loss, "entropy_loss": torch.zeros(()), "v_loss": v_loss, "approx_kl": approx_kl,
                 "clipfrac": clipfrac}
        if self.model.d.use_bc_loss:
            _, base_chains = self.model.sample(b["obs"], b["bc_noise"].transpose(0, 1), False, use_base_policy=True)
            bc = self.model.logprobs(b["obs"], base_chains).clamp(LOGPROB_MIN, LOGPROB_MAX).mean(dim=(-1, -2))
            terms.update(bc_loss=-bc.mean(), bc_coef=torch.tensor(self.model.d.bc_loss_coeff))
        return terms
