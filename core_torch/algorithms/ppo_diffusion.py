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

from core_torch.algorithms.ppo_agent import PPOAgent
from core_torch.algorithms.ppo_loss import (
    LOGPROB_MAX,
    LOGPROB_MIN,
    clip_advantages,
    clipped_policy_loss,
    normal_logprob,
    normalize_advantages,
    value_loss,
)
from core_torch.diffusion.eta import Eta
from core_torch.diffusion.model import chain_transitions, reverse_mean, step_tensors
from core_torch.networks.inputs import Cond, cond_inputs, obs_tensors, repeat_rows, state_input
from core_torch.networks.linear import MIN_ROWS
from core_torch.networks.registry import build_network
from core_torch.runtime.canonical import load_state
from core_torch.runtime.compiled import compile_function
from core_torch.runtime.precision import float_dtype, tensor
from shared.algorithms.ppo_math import clip_coefficients, denoising_discount
from shared.data import observations as ob
from shared.diffusion.sampling_plan import SamplingPlan, ddim_step_arrays, finetune_tables, sampling_plan
from shared.errors import CheckpointError
from shared.param_spec import CriticObsConfig
from shared.settings import DiffusionConfig, DPPOSettings, PPOSettings

_COEFS = ("recon_x", "recon_eps", "mean_x0", "mean_xt")


def ddim_mean_sigma(x: torch.Tensor, net_out: torch.Tensor, c: dict[str, torch.Tensor], eta: torch.Tensor,
                    predict_epsilon: bool, denoised_clip_value: float | None,
                    eps_clip_value: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """DDIM step with eta a tensor (upstream p_mean_var): x (N, Ta, Da), eta (N, 1, E) or 0-d, c scalars or (N, 1, 1).

    x0 = clip(recon_x x - recon_eps eps); eps' = clip((x - sqrt(a) x0) / sqrt(1 - a), +-eps_clip);
    sigma = max(eta sigma_unit, 1e-10); mean = sqrt(a_prev) x0 + sqrt(max(1 - a_prev - sigma^2, 0)) eps'.
    Returns (mean (N, Ta, Da), sigma broadcastable to it).
    """
    x0 = c["recon_x"] * x - c["recon_eps"] * net_out if predict_epsilon else net_out
    if denoised_clip_value is not None:
        x0 = x0.clamp(-denoised_clip_value, denoised_clip_value)
    eps = (x - c["sqrt_a"] * x0) / c["sqrt_1ma"]
    if eps_clip_value is not None:
        eps = eps.clamp(-eps_clip_value, eps_clip_value)
    sigma = (eta * c["sigma_unit"]).clamp(min=1e-10)
    dir_coef = (1.0 - c["a_prev"] - sigma**2).clamp(min=0).sqrt()
    return c["sqrt_a_prev"] * x0 + dir_coef * eps, sigma


class PPODiffusionModel(nn.Module):
    """Frozen base `actor`, fine-tuned copy `actor_ft` (last K steps only), `critic`, and the DDIM `eta`.

    K (`ft_steps`) and the exploration std floor (`min_sampling_std`) can change between iterations
    (`step_schedules`, upstream VPGDiffusion.step); every table sized by K is rebuilt then.
    """

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, d: DPPOSettings) -> None:
        super().__init__()
        self.dc, self.d = dc, d
        self.actor = build_network(dc.network).requires_grad_(False)
        self.actor_ft = build_network(dc.network)
        self.critic = build_network(critic)  # CriticObs, or a ViTCritic
        self.eta = Eta(d.eta).requires_grad_(d.learn_eta) if d.eta is not None else None
        self.num_steps = dc.ddim_steps if dc.use_ddim else dc.denoising_steps
        # sigma from a tensor eta inside the step: needed for a per-dim or per-state eta and for eps clipping;
        # a fixed eta keeps the precomputed two-coefficient tables (tests check both paths agree)
        self.in_graph_eta = dc.use_ddim and (dc.eps_clip_value is not None
                                             or (d.eta is not None and d.eta.kind != "EtaFixed"))
        self.fixed_eta = d.eta.fixed_value() if d.eta is not None and d.eta.kind == "EtaFixed" else 0.0
        self.ft_steps = d.ft_denoising_steps
        self.iterations = 0  # step_schedules calls so far
        self.min_sampling_std = d.min_sampling_std(0)
        self._build_tables()

    def _build_tables(self) -> None:
        dc, d = self.dc, self.d

        def plan(deterministic: bool) -> SamplingPlan:  # std floors are applied per call (the floor can change)
            return sampling_plan(dc.denoising_steps, dc.use_ddim, dc.ddim_steps, self.fixed_eta, deterministic, 0.0)

        self.plans = {det: plan(det) for det in (True, False)}
        self.step_coefs = {det: step_tensors(p) for det, p in self.plans.items()}
        if dc.use_ddim:
            for p, steps in zip(self.plans.values(), self.step_coefs.values()):
                arrays = ddim_step_arrays(p)
                for i, step in enumerate(steps):
                    step.update({k: torch.tensor(float(v[i]), dtype=float_dtype()) for k, v in arrays.items()})
        self.step_timesteps = {det: torch.from_numpy(p.timesteps) for det, p in self.plans.items()}  # (S,)
        ft = finetune_tables(self.plans[False], self.ft_steps, d.min_logprob_denoising_std)
        self.ft_t = torch.from_numpy(ft.timesteps)  # (K,)
        self.ft_coefs = {k: tensor(getattr(ft, k)) for k in _COEFS}  # each (K,)
        if dc.use_ddim:
            last = slice(self.num_steps - self.ft_steps, self.num_steps)
            self.ft_coefs.update({k: tensor(v) for k, v in ddim_step_arrays(self.plans[False], last).items()})
        self.ft_std = tensor(ft.logprob_std)

    # ---------- eta ----------
    def eta_values(self, obs: Cond) -> torch.Tensor:
        """eta per sample (B, E) for stochastic steps; a fixed eta (or none: 0) as a constant (B, 1)."""
        state = state_input(obs)
        if self.eta is None:
            return torch.zeros(state.shape[0], 1, dtype=state.dtype)
        return self.eta(state)

    def entropy_eta(self, obs: Cond) -> torch.Tensor:
        """What upstream's loss averages into its entropy term: eta (B, E) for DDIM, ones for DDPM."""
        if not self.dc.use_ddim:
            state = state_input(obs)
            return torch.ones(state.shape[0], 1, dtype=state.dtype)
        return self.eta_values(obs)

    # ---------- schedules (upstream VPGDiffusion.step) ----------
    def step_schedules(self) -> bool:
        """Once per iteration: advance the std floor; every ft_denoising_steps_t-th call, K -= ft_denoising_steps_d
        and the base actor becomes the current actor_ft. Returns whether K changed."""
        d = self.d
        self.iterations += 1
        self.min_sampling_std = d.min_sampling_std(self.iterations)
        if d.ft_denoising_steps_d > 0 and d.ft_denoising_steps_t > 0 and self.iterations % d.ft_denoising_steps_t == 0:
            # floor 1: at K = 0 no transition is left to score (upstream's loss would average nothing)
            new_k = max(1, self.ft_steps - d.ft_denoising_steps_d)
            with torch.no_grad():
                for base, ft in zip(self.actor.parameters(), self.actor_ft.parameters()):
                    base.copy_(ft)
            if new_k != self.ft_steps:
                self.ft_steps = new_k
                self._build_tables()
                return True
        return False

    def schedule_state(self) -> OrderedDict:
        return OrderedDict(ft_denoising_steps=np.array(self.ft_steps, np.int64),
                           iterations=np.array(self.iterations, np.int64))

    def load_schedule_state(self, state: dict) -> None:
        self.iterations = int(state["iterations"])
        self.min_sampling_std = self.d.min_sampling_std(self.iterations)
        self.ft_steps = int(state["ft_denoising_steps"])
        self._build_tables()

    def check_fixed_eta(self) -> None:
        """The precomputed tables assume EtaFixed's configured value: a loaded logit must give it."""
        if self.eta is not None and self.d.eta.kind == "EtaFixed":
            got = float(self.eta(torch.zeros(1, 1))[0, 0])
            if abs(got - self.fixed_eta) > 1e-6:
                raise CheckpointError(f"eta.eta_logit gives eta={got}, but model.eta configures {self.fixed_eta}")

    # ---------- sampling and log-probabilities ----------
    @torch.no_grad()
    def sample(self, state: Cond, noise: torch.Tensor, deterministic: bool,
               use_base_policy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """state (B, To, Do) (or an image network's (state, rgb)), noise (S+1, B, Ta, Da) -> actions (B, Ta, Da),
        chain (B, K+1, Ta, Da).

        Steps before the last K run the base actor only; the last K run actor_ft (or the base
        actor when use_base_policy), so no network output is computed and thrown away.
        Deterministic sampling is upstream's: DDIM with eta = 0 and no noise, DDPM floored at 1e-3.
        """
        K, S, dc = self.ft_steps, self.num_steps, self.dc
        ft_net = self.actor if use_base_policy else self.actor_ft
        steps = self.step_timesteps[deterministic]
        base_in = (self.actor.time_embedding(steps), self.actor.condition(*cond_inputs(state)))  # once per chain
        ft_in = (ft_net.time_embedding(steps), ft_net.condition(*cond_inputs(state)))
        z = noise[1:].clamp(-dc.randn_clip_value, dc.randn_clip_value)  # (S, B, Ta, Da)
        eta = None
        if self.in_graph_eta:
            eta = torch.zeros(()) if deterministic else self.eta_values(state)[:, None, :]  # (B, 1, E)
        x = noise[0]
        chain = [x] if K == S else []
        for i, coefs in enumerate(self.step_coefs[deterministic]):
            net, (t_embs, cond) = (self.actor, base_in) if i < S - K else (ft_net, ft_in)
            net_out = net.denoise(x, t_embs[i : i + 1], cond)
            if eta is not None:
                mean, sigma = ddim_mean_sigma(x, net_out, coefs, eta, dc.predict_epsilon, dc.denoised_clip_value,
                                              dc.eps_clip_value)
                std = torch.zeros(()) if deterministic else sigma.clamp(min=self.min_sampling_std)
            else:
                mean = reverse_mean(x, net_out, coefs, dc.predict_epsilon, dc.denoised_clip_value)
                std = coefs["std"] if deterministic else coefs["std"].clamp(min=self.min_sampling_std)
            x = mean + std * z[i]
            if i == S - 1 and dc.final_action_clip_value is not None:
                x = x.clamp(-dc.final_action_clip_value, dc.final_action_clip_value)
            if i >= S - K - 1:
                chain.append(x)
        return x, torch.stack(chain, dim=1)

    def logprobs(self, state: Cond, chains: torch.Tensor) -> torch.Tensor:
        """Log-density of every fine-tuned transition chain[j] -> chain[j+1] under actor_ft.  (B, K, Ta, Da)"""
        B, K1, Ta, Da = chains.shape
        K = K1 - 1
        if self.ft_steps != K:
            raise ValueError(f"chains hold {K} fine-tuned transitions, the model fine-tunes {self.ft_steps}")
        prev, nxt, coefs = chain_transitions(chains, {**self.ft_coefs, "logprob_std": self.ft_std})
        std_table = coefs.pop("logprob_std")  # (B*K, 1, 1)
        t = self.ft_t.repeat(B)
        net = self.actor_ft
        if self.dc.condition_once_per_row:  # row b's features, encoded once, at rows b*K .. b*K + K - 1
            net_out = net.denoise(prev, net.time_embedding(t), repeat_rows(net.condition(*cond_inputs(state)), K))
        else:  # (B*K, To, Do) (and frames), row b*K + j: each step encodes (and draws dropout) anew
            net_out = net(prev, t, *cond_inputs(repeat_rows(state, K)))
        dc = self.dc
        if self.in_graph_eta:
            eta = self.eta_values(state).repeat_interleave(K, dim=0)[:, None, :]  # (B*K, 1, E)
            mean, sigma = ddim_mean_sigma(prev, net_out, coefs, eta, dc.predict_epsilon, dc.denoised_clip_value,
                                          dc.eps_clip_value)
            std = sigma.clamp(min=self.d.min_logprob_denoising_std)
        else:
            mean = reverse_mean(prev, net_out, coefs, dc.predict_epsilon, dc.denoised_clip_value)
            std = std_table
        return normal_logprob(nxt, mean, std.expand_as(mean)).reshape(B, K, Ta, Da)


class PPODiffusionAgent(PPOAgent):
    """act / evaluate / update on numpy arrays for DPPO."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, settings: PPOSettings, d: DPPOSettings,
                 init_params: OrderedDict) -> None:
        model = PPODiffusionModel(dc, critic, d)
        load_state(model, init_params)
        model.check_fixed_eta()
        super().__init__(model, "actor_ft.", settings)
        self._k_tables()
        self.compile_small_batches = os.environ.get("DPPO_TORCH_COMPILE", "0") == "1"
        self._compiled_sample: Callable | None = None  # made on first use (importing dynamo takes ~1 s)

    def _k_tables(self) -> None:
        """Everything the loss sizes by K: denoising discount and clip coefficients, each (K,)."""
        d, K = self.model.d, self.model.ft_steps
        self.discount = tensor(denoising_discount(K, d.gamma_denoising))
        self.clip_coefs = tensor(clip_coefficients(K, self.settings.clip_ploss_coef, d.clip_ploss_coef_base,
                                                 d.clip_ploss_coef_rate))

    @property
    def ft_denoising_steps(self) -> int:
        """Current K: chains are (N, K+1, Ta, Da), log-probs (N, K, Ta, Da); it shrinks when annealed."""
        return self.model.ft_steps

    @property
    def min_sampling_std(self) -> float:
        return self.model.min_sampling_std

    def end_iteration(self, update_actor: bool) -> None:
        """Learning-rate schedules, then upstream's model.step(): the std-floor schedule and K's annealing."""
        super().end_iteration(update_actor)
        if self.model.step_schedules():
            self._k_tables()
            self._compiled_sample = None

    def state_groups(self) -> dict[str, OrderedDict]:
        return {**super().state_groups(), "dppo_schedule": self.model.schedule_state()}

    def load_groups(self, groups: dict[str, OrderedDict], actor_steps: int, critic_steps: int) -> None:
        super().load_groups(groups, actor_steps, critic_steps)
        self.model.check_fixed_eta()
        if "dppo_schedule" in groups:  # K and the std floor are constants of the compiled functions
            before = (self.model.ft_steps, self.model.min_sampling_std)
            self.model.load_schedule_state(groups["dppo_schedule"])
            if (self.model.ft_steps, self.model.min_sampling_std) != before:
                self._k_tables()
                self._compiled_sample = None

    @torch.no_grad()
    def act(self, obs: ob.Obs, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """Below MIN_ROWS rows the chain is bound by per-op dispatch, so with compile_small_batches
        (DPPO_TORCH_COMPILE=1) it runs through torch.compile: 1.7x faster at batch 1, after a
        ~13 s compile per batch size. Larger batches gain more from oneDNN's matmuls (core_torch/
        linear.py), which inductor cannot call, so they stay eager."""
        state, noise_t = obs_tensors(obs), torch.from_numpy(noise)
        if ob.batch_len(obs) < MIN_ROWS and self.compile_small_batches:
            if self._compiled_sample is None:
                self._compiled_sample = compile_function(self.model.sample)
            try:
                actions, chains = self._compiled_sample(state, noise_t, deterministic)
                return {"actions": actions.numpy(), "chains": chains.numpy()}
            except torch._dynamo.exc.BackendCompilerFailed as e:  # e.g. no C++ compiler on this machine
                warnings.warn(f"torch.compile failed ({str(e).splitlines()[0]}); sampling eagerly", stacklevel=3)
                self.compile_small_batches = False
        actions, chains = self.model.sample(state, noise_t, deterministic)
        return {"actions": actions.numpy(), "chains": chains.numpy()}

    @torch.no_grad()
    def evaluate(self, obs: ob.Obs, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), log-probs (N, K, Ta, Da)) of the rollout's chains under the current actor_ft.
        The driver calls it in chunks of train.logprob_batch_size rows (dppo.algorithms.ppo.evaluate_in_chunks)."""
        o = obs_tensors(obs)
        return (self.model.critic(*cond_inputs(o)).reshape(-1).numpy(),
                self.model.logprobs(o, torch.from_numpy(sample["chains"])).numpy())

    @torch.no_grad()
    def value(self, obs: ob.Obs) -> np.ndarray:
        return self.model.critic(*cond_inputs(obs_tensors(obs))).reshape(-1).numpy()

    def _mean_logprob(self, logprobs: torch.Tensor) -> torch.Tensor:
        """Clamp element-wise, keep the executed actions (reward_horizon), average: (B, K, Ta, Da) -> (B*K,)."""
        h = self.model.d.reward_horizon
        return logprobs.clamp(LOGPROB_MIN, LOGPROB_MAX)[:, :, :h].mean(dim=(-1, -2)).reshape(-1)

    def loss_terms(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        s, K = self.settings, self.model.ft_steps
        B = state_input(b["obs"]).shape[0]
        newlogprobs = self._mean_logprob(self.model.logprobs(b["obs"], b["chains"]))
        oldlogprobs = self._mean_logprob(b["logprobs"])
        adv = b["advantages"]
        if s.norm_adv:
            adv = normalize_advantages(adv)
        adv = clip_advantages(adv, s.clip_advantage_lower_quantile, s.clip_advantage_upper_quantile)
        adv = adv.repeat_interleave(K) * self.discount.repeat(B)  # (B*K,), row b*K + j
        pg_loss, approx_kl, clipfrac = clipped_policy_loss(newlogprobs, oldlogprobs, adv, self.clip_coefs.repeat(B))
        v_loss = value_loss(self.model.critic(*cond_inputs(b["obs"])).reshape(-1), b["returns"], b["values"],
                            s.clip_vloss_coef)
        # upstream's entropy term: -mean eta over the scored rows (ones for DDPM); ent_coef weights it
        terms = {"pg_loss": pg_loss, "entropy_loss": -self.model.entropy_eta(b["obs"]).mean(), "v_loss": v_loss,
                 "approx_kl": approx_kl, "clipfrac": clipfrac}
        if self.model.d.use_bc_loss:
            _, base_chains = self.model.sample(b["obs"], b["bc_noise"].transpose(0, 1), False, use_base_policy=True)
            bc = self.model.logprobs(b["obs"], base_chains).clamp(LOGPROB_MIN, LOGPROB_MAX).mean(dim=(-1, -2))
            terms.update(bc_loss=-bc.mean(), bc_coef=torch.tensor(self.model.d.bc_loss_coeff))
        return terms
