"""DDPO on a small class-conditional image diffusion model (torch side): pre-training with label dropout
and an EMA copy, DDIM sampling (eta = 1, classifier-free guidance) that records each chain and its per-step
log-probabilities, and the losses of DDPO-SF, DDPO-IS (clipped ratio), DDPO-ISKL, RWR and sparse RWR.

Shapes: B chains or images, S sampling steps, D = 64 pixels, C = 11 classes (10 digits + the null class).
A step's log-probability is the mean over the D pixels of the Gaussian log-density (DDPO's convention);
the chain scoring is DPPO's (core_torch/diffusion/model.py: chain_transitions, reverse_mean; PPO's
normal_logprob). Every random number (noise, timesteps, prompts, label dropout) comes from the driver, in
numpy, so both frameworks see the same numbers.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from core_torch.algorithms.ppo_loss import normal_logprob
from core_torch.diffusion.model import chain_transitions, reverse_mean
from core_torch.networks.cond_denoiser import CondDenoiser
from core_torch.runtime.canonical import export_state, load_state
from core_torch.runtime.optim import adamw_state, clip_grad_norm, load_adamw_state, make_adamw
from core_torch.runtime.precision import float_dtype
from shared.ddpo.chain import DDPOChain
from shared.ddpo.digits import NULL_CLASS, NUM_CLASSES
from shared.param_spec import CondDenoiserConfig
from shared.precision import compute_dtype
from shared.settings.ddpo import DDPOPretrainSection, DDPOSampleConfig, DDPOTrainConfig

_COEFS = ("recon_x", "recon_eps", "mean_x0", "mean_xt")


def _t(a: np.ndarray | float) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=compute_dtype()))


def one_hot(labels: torch.Tensor) -> torch.Tensor:
    """(N,) int -> (N, C) in the compute dtype."""
    return nn.functional.one_hot(labels, NUM_CLASSES + 1).to(float_dtype())


def guided_eps(net: nn.Module, x: torch.Tensor, labels: torch.Tensor, t01: torch.Tensor, w: float) -> torch.Tensor:
    """eps_u + w (eps_c - eps_u) (N, D) for x (N, D), labels (N,), t01 (N, 1): one forward of 2N rows, the
    prompted half first, the null half second."""
    n = x.shape[0]
    both = torch.cat([labels, torch.full_like(labels, NULL_CLASS)])
    out = net(one_hot(both), torch.cat([x, x]), torch.cat([t01, t01]))
    eps_c, eps_u = out[:n], out[n:]
    return eps_u + w * (eps_c - eps_u)


def step_logprobs(mean: torch.Tensor, nxt: torch.Tensor, std: torch.Tensor, chains: int) -> torch.Tensor:
    """(chains, S) log-probabilities, averaged over the pixels, of the steps to nxt (B*S, D) from Gaussians of
    mean (B*S, D) and std (B*S, 1)."""
    return normal_logprob(nxt, mean, std.expand_as(mean)).mean(-1).reshape(chains, -1)


class DDPOPretrainer:
    """The denoising loss mean (eps_hat(c, x_t, t / T) - eps)^2 with labels given (dropout done by the driver),
    AdamW with the learning rate passed per step, gradient clipping and an EMA copy."""

    def __init__(self, model_cfg: CondDenoiserConfig, chain: DDPOChain, section: DDPOPretrainSection,
                 params: OrderedDict) -> None:
        self.section = section
        self.model = CondDenoiser(model_cfg)
        load_state(self.model, params)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.named = list(self.model.named_parameters())
        self.optimizer = make_adamw([p for _, p in self.named], section.learning_rate, section.weight_decay)
        self.sqrt_ab = _t(chain.tables.sqrt_alphas_cumprod)
        self.sqrt_1m_ab = _t(chain.tables.sqrt_one_minus_alphas_cumprod)
        self.time_input = _t(chain.time_input)

    def loss(self, x0: torch.Tensor, labels: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x0, noise (B, D), labels (B,) in [0, C), t (B,) int."""
        x_t = self.sqrt_ab[t, None] * x0 + self.sqrt_1m_ab[t, None] * noise
        return ((self.model(one_hot(labels), x_t, self.time_input[t, None]) - noise) ** 2).mean()

    def train_step(self, x0: np.ndarray, labels: np.ndarray, t: np.ndarray, noise: np.ndarray, lr: float
                   ) -> dict[str, float]:
        loss = self.loss(_t(x0), torch.as_tensor(labels), torch.as_tensor(t), _t(noise))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = clip_grad_norm([p for _, p in self.named], self.section.max_grad_norm)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        with torch.no_grad():
            d = self.section.ema_decay
            for e, p in zip(self.ema.parameters(), self.model.parameters()):
                e.mul_(d).add_(p, alpha=1.0 - d)
        return {"loss": float(loss.detach()), "grad_norm": grad_norm}

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "ema": export_state(self.ema),
                "optimizer": adamw_state(self.optimizer, self.named)}

    def load_groups(self, groups: dict[str, OrderedDict]) -> None:
        load_state(self.model, groups["model"])
        load_state(self.ema, groups["ema"], "ema")
        load_adamw_state(self.optimizer, self.named, groups["optimizer"])


class DDPOAgent:
    """Sampling, chain scoring, the algorithm's loss and AdamW steps on numpy arrays; canonical weights in and
    out. `ref_params` (ISKL only) is the frozen pre-trained model the KL term holds the policy to."""

    def __init__(self, model_cfg: CondDenoiserConfig, chain: DDPOChain, sample: DDPOSampleConfig,
                 train: DDPOTrainConfig, algorithm: str, params: OrderedDict, ref_params: OrderedDict | None = None
                 ) -> None:
        self.sample_cfg, self.train_cfg, self.algorithm = sample, train, algorithm
        self.model = CondDenoiser(model_cfg)
        load_state(self.model, params)
        self.ref = None
        if algorithm == "iskl":
            self.ref = CondDenoiser(model_cfg).requires_grad_(False)
            load_state(self.ref, ref_params if ref_params is not None else params, "reference")
        self.named = list(self.model.named_parameters())
        self.optimizer = make_adamw([p for _, p in self.named], train.learning_rate, train.weight_decay)
        sc = chain.scoring
        # per sampling step (S,): the reverse-mean coefficients, the std, the time input t / T
        self.steps = {**{k: _t(getattr(sc, k)) for k in _COEFS}, "std": _t(sc.logprob_std),
                      "t01": _t(chain.time_input[sc.timesteps])}
        self.sqrt_ab = _t(chain.tables.sqrt_alphas_cumprod)
        self.sqrt_1m_ab = _t(chain.tables.sqrt_one_minus_alphas_cumprod)
        self.time_input = _t(chain.time_input)

    def _eps(self, net: nn.Module, x: torch.Tensor, labels: torch.Tensor, t01: torch.Tensor) -> torch.Tensor:
        return guided_eps(net, x, labels, t01, self.sample_cfg.guidance)

    @torch.no_grad()
    def sample(self, labels: np.ndarray, noise: np.ndarray) -> dict[str, np.ndarray]:
        """labels (B,), noise (S+1, B, D) standard normal (x_T first) -> chains (B, S+1, D) and the per-step
        log-probabilities (B, S) of the transitions taken."""
        y, z = torch.as_tensor(labels), _t(noise)
        x = z[0]
        ones = torch.ones((x.shape[0], 1), dtype=x.dtype)
        chain, logps = [x], []
        for i in range(z.shape[0] - 1):
            s = {k: v[i] for k, v in self.steps.items()}
            mean = reverse_mean(x, self._eps(self.model, x, y, s["t01"] * ones), s, True, self.sample_cfg.clip_x0)
            x = mean + s["std"] * z[i + 1]
            logps.append(normal_logprob(x, mean, s["std"].expand_as(mean)).mean(-1))
            chain.append(x)
        return {"chains": torch.stack(chain, 1).numpy(), "logprobs": torch.stack(logps, 1).numpy()}

    def transitions(self, net: nn.Module, chains: torch.Tensor, labels: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every step of chains (B, S+1, D) for prompts labels (B,) as rows b*S + j: net's mean (B*S, D) of the
        step's Gaussian, the state the chain went to (B*S, D) and the step's std (B*S, 1)."""
        S = chains.shape[1] - 1
        prev, nxt, coefs = chain_transitions(chains, self.steps)
        std, t01 = coefs.pop("std"), coefs.pop("t01")  # (B*S, 1)
        mean = reverse_mean(prev, self._eps(net, prev, labels.repeat_interleave(S), t01), coefs, True,
                            self.sample_cfg.clip_x0)
        return mean, nxt, std

    def chain_logprobs(self, net: nn.Module, chains: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-step log-probabilities (B, S) of chains (B, S+1, D) for prompts labels (B,) under net."""
        return step_logprobs(*self.transitions(net, chains, labels), chains.shape[0])

    def kl_penalty(self, mean: torch.Tensor, std: torch.Tensor, new: torch.Tensor, chains: torch.Tensor,
                   labels: torch.Tensor) -> torch.Tensor:
        """ISKL's KL term, mean over the B chains of chains (B, S+1, D), from the policy's step means (B*S, D), the
        steps' stds (B*S, 1) and the log-probabilities (B, S); the reference model gets no gradient."""
        assert self.ref is not None
        if self.train_cfg.kl_estimator == "chain":  # (1/2)(sum_t logp_theta - logp_ref)^2
            with torch.no_grad():
                ref = self.chain_logprobs(self.ref, chains, labels)
            return 0.5 * ((new - ref).sum(1) ** 2).mean()
        # sum_t KL(N(mu_theta, s_t^2) || N(mu_ref, s_t^2)), averaged over the pixels as the log-probabilities are
        with torch.no_grad():
            ref_mean = self.transitions(self.ref, chains, labels)[0]
        return (((mean - ref_mean) ** 2) / (2 * std**2)).mean(-1).reshape(new.shape).sum(1).mean()

    def losses(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The algorithm's loss on a minibatch. Policy gradients (sf, is, iskl) read chains (B, S+1, D), labels
        (B,), advantages (B,) and (is, iskl) old_logprobs (B, S); RWR reads x0 (B, D), labels, t (B,), noise
        (B, D) and weights (B,)."""
        c, alg = self.train_cfg, self.algorithm
        if alg in ("rwr", "sparse_rwr"):
            t = b["t"]
            x_t = self.sqrt_ab[t, None] * b["x0"] + self.sqrt_1m_ab[t, None] * b["noise"]
            per = ((self._eps(self.model, x_t, b["labels"], self.time_input[t, None]) - b["noise"]) ** 2).mean(-1)
            return {"loss": (b["weights"] * per).sum(), "denoise_loss": per.mean()}
        adv = b["advantages"].clamp(-c.adv_clip_max, c.adv_clip_max)[:, None]  # (B, 1)
        mean, nxt, std = self.transitions(self.model, b["chains"], b["labels"])  # (B*S, D), (B*S, D), (B*S, 1)
        new = step_logprobs(mean, nxt, std, adv.shape[0])  # (B, S)
        if alg == "sf":
            return {"loss": -(adv * new).mean(), "logprob": new.detach().mean()}
        ratio = torch.exp(new - b["old_logprobs"])
        pg = torch.maximum(-adv * ratio, -adv * ratio.clamp(1.0 - c.clip_range, 1.0 + c.clip_range)).mean()
        out = {"loss": pg, "policy_loss": pg.detach(),
               "approx_kl": (0.5 * (new - b["old_logprobs"]) ** 2).mean().detach(),
               "clipfrac": ((ratio - 1.0).abs() > c.clip_range).to(ratio.dtype).mean().detach()}
        if alg == "iskl":
            kl = self.kl_penalty(mean, std, new, b["chains"], b["labels"])
            out.update(loss=pg + c.kl_coef * kl, kl=kl.detach())
        return out

    def train_step(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One AdamW step (gradient norm clipped); the loss terms before it and the gradient norm."""
        b = {k: torch.as_tensor(v) if v.dtype.kind == "i" else _t(v) for k, v in batch.items()}
        out = self.losses(b)
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        grad_norm = clip_grad_norm([p for _, p in self.named], self.train_cfg.max_grad_norm)
        self.optimizer.step()
        return {**{k: float(v.detach()) for k, v in out.items()}, "grad_norm": grad_norm}

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "optimizer": adamw_state(self.optimizer, self.named)}

    def load_groups(self, groups: dict[str, OrderedDict]) -> None:
        load_state(self.model, groups["model"])
        load_adamw_state(self.optimizer, self.named, groups["optimizer"])
