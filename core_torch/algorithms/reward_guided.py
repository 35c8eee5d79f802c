"""Reward-guided conditional diffusion (the "Diffusion Policy Engine" note), torch side: the denoising loss
minus lambda times the reward of the reconstructed parameters, and DDPM sampling with MPPI re-weighting.

Shapes: B rows, Dx context dim, Dp parameter dim, T denoising steps, K MPPI candidates. The driver
(dppo/guided/) draws every random number in numpy (timesteps, noise, initial samples, jitter), so both
frameworks train and sample on the same numbers. `reward(x, p) -> (B,)` is a function of tensors; a
black-box numpy reward goes through `host_reward` and reaches sampling only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch

from core_torch.networks.cond_denoiser import CondDenoiser
from core_torch.runtime.canonical import export_state, load_state
from core_torch.runtime.optim import adamw_state, clip_grad_norm, load_adamw_state, make_adamw
from shared.guided.chain import GuidedChain
from shared.param_spec import CondDenoiserConfig
from shared.precision import compute_dtype
from shared.settings.guided import GuidedSampleConfig, GuidedTrainConfig

Reward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def host_reward(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Reward:
    """A numpy reward (x (B, Dx), p (B, Dp)) -> (B,) called on the host: no gradient flows through it."""
    return lambda x, p: torch.as_tensor(np.asarray(fn(x.detach().numpy(), p.detach().numpy())), dtype=p.dtype)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=compute_dtype()))


def mppi_mean(x: torch.Tensor, mean: torch.Tensor, jitter: torch.Tensor, reward: Reward,
              temperature: float) -> torch.Tensor:
    """The mean (B, Dp) and K jittered copies mean + jitter (K, B, Dp), averaged with weights
    softmax(reward / temperature) over the K + 1 candidates."""
    cands = torch.cat([mean[None], mean[None] + jitter])  # (K+1, B, Dp)
    k1, b = cands.shape[:2]
    scores = reward(x.repeat(k1, 1), cands.reshape(k1 * b, -1)).reshape(k1, b)
    weights = torch.softmax(scores / temperature, dim=0)[..., None]
    return (weights * cands).sum(0)


class RewardGuidedAgent:
    """Train steps and sampling on numpy arrays; canonical weights and AdamW state in and out."""

    def __init__(self, model_cfg: CondDenoiserConfig, chain: GuidedChain, train: GuidedTrainConfig,
                 sample: GuidedSampleConfig, params: OrderedDict, reward: Reward, differentiable: bool = True
                 ) -> None:
        self.train_cfg, self.sample_cfg, self.reward, self.differentiable = train, sample, reward, differentiable
        self.model = CondDenoiser(model_cfg)
        load_state(self.model, params)
        self.named = list(self.model.named_parameters())
        self.optimizer = make_adamw([p for _, p in self.named], train.learning_rate, train.weight_decay)
        tb = chain.tables
        # training tables, indexed by t: q_sample and the reconstruction of p0 from p_t and eps_hat
        self.sqrt_ab, self.sqrt_1m_ab = _t(tb.sqrt_alphas_cumprod), _t(tb.sqrt_one_minus_alphas_cumprod)
        self.recon_x, self.recon_eps = _t(tb.sqrt_recip_alphas_cumprod), _t(tb.sqrt_recipm1_alphas_cumprod)
        self.time_input = _t(chain.time_input)
        self.plan = chain.plan

    def denoise(self, x: torch.Tensor, p0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """p_t = sqrt(ab_t) p0 + sqrt(1 - ab_t) noise, eps_hat(x, p_t, t / T) and the reconstruction
        p0_hat = (p_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t), each (B, Dp)."""
        p_t = self.sqrt_ab[t, None] * p0 + self.sqrt_1m_ab[t, None] * noise
        eps_hat = self.model(x, p_t, self.time_input[t, None])
        return p_t, eps_hat, self.recon_x[t, None] * p_t - self.recon_eps[t, None] * eps_hat

    def losses(self, x: torch.Tensor, p0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
               reward_weight: float) -> dict[str, torch.Tensor]:
        """x (B, Dx), p0 (B, Dp), t (B,) int, noise (B, Dp): loss = mse(eps_hat, noise) - lambda mean R(x, p0_hat)."""
        _, eps_hat, p0_hat = self.denoise(x, p0, t, noise)
        denoise = ((eps_hat - noise) ** 2).mean()
        if not self.differentiable:  # a black box gives values only: no reward term
            return {"loss": denoise, "denoise_loss": denoise, "reward": torch.zeros((), dtype=denoise.dtype)}
        scored = p0_hat if self.train_cfg.reward_gradient else p0_hat.detach()
        reward = self.reward(x, scored).mean()
        return {"loss": denoise - reward_weight * reward, "denoise_loss": denoise, "reward": reward}

    def train_step(self, x: np.ndarray, p0: np.ndarray, t: np.ndarray, noise: np.ndarray,
                   reward_weight: float) -> dict[str, float]:
        """One AdamW step (gradient norm clipped) on a batch; the losses before the step and the gradient norm."""
        out = self.losses(_t(x), _t(p0), torch.as_tensor(t), _t(noise), reward_weight)
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        grad_norm = clip_grad_norm([p for _, p in self.named], self.train_cfg.max_grad_norm)
        self.optimizer.step()
        return {**{k: float(v.detach()) for k, v in out.items()}, "grad_norm": grad_norm}

    @torch.no_grad()
    def sample(self, x: np.ndarray, p_init: np.ndarray, step_noise: np.ndarray, jitter: np.ndarray | None
               ) -> np.ndarray:
        """x (B, Dx), p_init (B, Dp) ~ N(0, I), step_noise (T, B, Dp), jitter (T, K, B, Dp) standard normal
        or None (no MPPI) -> p (B, Dp)."""
        xt, p = _t(x), _t(p_init)
        ones = torch.ones((x.shape[0], 1), dtype=p.dtype)
        for i, s in enumerate(self.plan.step_scalars):
            t = int(self.plan.timesteps[i])
            eps_hat = self.model(xt, p, self.time_input[t] * ones)
            mean = s["mean_x0"] * (s["recon_x"] * p - s["recon_eps"] * eps_hat) + s["mean_xt"] * p
            if jitter is not None:
                mean = mppi_mean(xt, mean, self.sample_cfg.mppi_jitter * _t(jitter[i]), self.reward,
                                 self.sample_cfg.mppi_temperature)
            p = mean + s["std"] * _t(step_noise[i])
        return p.numpy()

    @torch.no_grad()
    def reward_of(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.reward(_t(x), _t(p)).numpy()

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "optimizer": adamw_state(self.optimizer, self.named)}

    def load_groups(self, groups: dict[str, OrderedDict]) -> None:
        load_state(self.model, groups["model"])
        load_adamw_state(self.optimizer, self.named, groups["optimizer"])
