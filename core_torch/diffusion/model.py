"""DiffusionModel: forward noising, denoising loss and the reverse-chain sampler.

Shapes: B batch, S reverse steps, Ta horizon (action chunk), Da action dim,
To observation history, Do observation dim.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from core_torch.networks.inputs import Cond, cond_inputs, state_input
from core_torch.networks.registry import build_network
from core_torch.runtime.precision import float_dtype, tensor
from shared.diffusion.sampling_plan import DDPM_EVAL_MIN_STD, SamplingPlan, sampling_plan
from shared.diffusion.schedule import ddpm_tables
from shared.settings import DiffusionConfig


def reverse_mean(x: torch.Tensor, net_out: torch.Tensor, coefs: dict[str, torch.Tensor | float], predict_epsilon: bool,
                 denoised_clip_value: float | None) -> torch.Tensor:
    """Mean of p(x_prev | x): x0 = clip(recon_x x - recon_eps eps) (or the x0 output); mean_x0 x0 + mean_xt x."""
    x0 = coefs["recon_x"] * x - coefs["recon_eps"] * net_out if predict_epsilon else net_out
    if denoised_clip_value is not None:
        x0 = x0.clamp(-denoised_clip_value, denoised_clip_value)
    return coefs["mean_x0"] * x0 + coefs["mean_xt"] * x


def chain_transitions(chains: torch.Tensor, step_tables: dict[str, torch.Tensor]
                      ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Every transition chain[:, j] -> chain[:, j + 1] of chains (B, K+1, *E) as rows b*K + j: prev and next
    (B*K, *E), and each step table (K,) repeated per chain and shaped (B*K, 1, ..., 1) to broadcast over E.
    What scoring a chain's log-probability needs for any event shape E (DPPO's (Ta, Da), an image's pixels)."""
    B, K = chains.shape[0], chains.shape[1] - 1
    event = tuple(chains.shape[2:])
    prev = chains[:, :-1].reshape(B * K, *event)
    nxt = chains[:, 1:].reshape(B * K, *event)
    pad = (slice(None),) + (None,) * len(event)
    return prev, nxt, {k: v.repeat(B)[pad] for k, v in step_tables.items()}


def step_tensors(plan: SamplingPlan) -> list[dict[str, torch.Tensor]]:
    """plan.step_scalars as 0-d tensors (compute dtype), made once per plan: torch wraps and converts a
    Python float on every op, which made each scalar multiply ~3x slower at batch 1."""
    return [{k: torch.tensor(v, dtype=float_dtype()) for k, v in step.items()} for step in plan.step_scalars]


class Sample(NamedTuple):
    trajectories: torch.Tensor  # (B, Ta, Da)
    chains: torch.Tensor | None  # (B, S + 1, Ta, Da), x_T first


class DiffusionModel(nn.Module):
    def __init__(self, config: DiffusionConfig, network: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.network = network if network is not None else build_network(config.network)
        tables = ddpm_tables(config.denoising_steps)
        self.register_buffer("sqrt_alphas_cumprod", tensor(tables.sqrt_alphas_cumprod), persistent=False)
        self.register_buffer(
            "sqrt_one_minus_alphas_cumprod", tensor(tables.sqrt_one_minus_alphas_cumprod), persistent=False
        )
        self._plans: dict[tuple[bool, float], tuple[SamplingPlan, list[dict[str, torch.Tensor]]]] = {}

    # ---------- tables ----------
    def plan(self, deterministic: bool = True, min_sampling_std: float = DDPM_EVAL_MIN_STD) -> SamplingPlan:
        return self._plan_and_steps(deterministic, min_sampling_std)[0]

    def _plan_and_steps(self, deterministic: bool, min_sampling_std: float
                        ) -> tuple[SamplingPlan, list[dict[str, torch.Tensor]]]:
        key = (deterministic, float(min_sampling_std))
        if key not in self._plans:
            c = self.config
            plan = sampling_plan(c.denoising_steps, c.use_ddim, c.ddim_steps, deterministic=deterministic,
                                 min_sampling_std=min_sampling_std)
            self._plans[key] = (plan, step_tensors(plan))
        return self._plans[key]

    @property
    def num_sampling_steps(self) -> int:
        return self.config.ddim_steps if self.config.use_ddim else self.config.denoising_steps

    # ---------- training ----------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; x0, noise (B, Ta, Da), t (B,)."""
        a = self.sqrt_alphas_cumprod[t][:, None, None]
        s = self.sqrt_one_minus_alphas_cumprod[t][:, None, None]
        return a * x0 + s * noise

    def loss(self, x0: torch.Tensor, state: Cond, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the epsilon (or x0) prediction at timesteps t; state (B, To, Do) or an image
        network's (state, rgb)."""
        pred = self.network(self.q_sample(x0, t, noise), t, *cond_inputs(state))
        target = noise if self.config.predict_epsilon else x0
        return torch.mean((pred - target) ** 2)

    # ---------- sampling ----------
    def reverse_mean(self, x: torch.Tensor, net_out: torch.Tensor,
                     coefs: dict[str, torch.Tensor | float]) -> torch.Tensor:
        """Mean of p(x_prev | x) from the network output; coefs hold one step's scalars."""
        return reverse_mean(x, net_out, coefs, self.config.predict_epsilon, self.config.denoised_clip_value)

    def draw_noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal noise for one chain: (S + 1, B, Ta, Da), x_T first."""
        c = self.config
        shape = (self.num_sampling_steps + 1, batch, c.horizon_steps, c.action_dim)
        return torch.randn(shape, generator=generator, device=self.sqrt_alphas_cumprod.device)

    @torch.no_grad()
    def sample(
        self,
        state: Cond,
        noise: torch.Tensor | None = None,
        deterministic: bool = True,
        min_sampling_std: float = DDPM_EVAL_MIN_STD,
        return_chain: bool = False,
        generator: torch.Generator | None = None,
    ) -> Sample:
        """Run the reverse chain for state (B, To, Do) (or (state, rgb)); noise (S + 1, B, Ta, Da) or drawn."""
        plan, step_coefs = self._plan_and_steps(deterministic, min_sampling_std)
        s = state_input(state)
        if noise is None:
            noise = self.draw_noise(s.shape[0], generator)
        c = self.config
        t_embs = self.network.time_embedding(torch.from_numpy(plan.timesteps).to(s.device))  # (S, time_dim)
        cond = self.network.condition(*cond_inputs(state))  # (B, C); both once per chain
        z = noise[1:].clamp(-c.randn_clip_value, c.randn_clip_value)  # (S, B, Ta, Da)
        x = noise[0]
        chain = [x]
        for i, coefs in enumerate(step_coefs):
            net_out = self.network.denoise(x, t_embs[i : i + 1], cond)
            x = self.reverse_mean(x, net_out, coefs) + coefs["std"] * z[i]
            if i == plan.num_steps - 1 and c.final_action_clip_value is not None:
                x = x.clamp(-c.final_action_clip_value, c.final_action_clip_value)
            chain.append(x)
        return Sample(x, torch.stack(chain, dim=1) if return_chain else None)
