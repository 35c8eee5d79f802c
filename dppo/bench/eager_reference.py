"""The work done the way upstream DPPO's PyTorch code does it, as the speed baseline.

Eager torch, one Python step at a time: every denoising step runs the time-embedding MLP, runs
the base actor on every row and then the fine-tuned actor on the fine-tuned rows (overwriting
the base output), and gathers its coefficients per step; log-probabilities likewise run the base
actor on all rows before the fine-tuned one. Same numbers as the project's models (same tables,
same networks); only the way of computing differs.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from core_torch.networks.diffusion_mlp import DiffusionMLP
from shared.diffusion.schedule import ddpm_tables


def with_plain_linears(module: nn.Module) -> nn.Module:
    """A structural copy of module built from torch's own nn.Linear (as upstream builds its networks,
    so the reference gets none of core_torch's fast paths), sharing every parameter with module."""
    plain = copy.deepcopy(module)
    for name, sub in list(plain.named_modules()):
        if isinstance(sub, nn.Linear) and type(sub) is not nn.Linear:
            parent, _, leaf = name.rpartition(".")
            setattr(plain.get_submodule(parent), leaf, nn.Linear(sub.in_features, sub.out_features))
    for name, sub in plain.named_modules():
        original = module.get_submodule(name)
        for pname, _ in list(sub.named_parameters(recurse=False)):
            setattr(sub, pname, getattr(original, pname))
    return plain


def _extract(table: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return table.gather(-1, t).reshape(-1, 1, 1)


class UpstreamStyleDPPO(nn.Module):
    def __init__(self, actor: DiffusionMLP, actor_ft: DiffusionMLP, denoising_steps: int, ft_steps: int,
                 min_sampling_std: float = 0.1, min_logprob_std: float = 0.1, randn_clip: float = 3.0,
                 denoised_clip: float = 1.0) -> None:
        super().__init__()
        self.actor, self.actor_ft = with_plain_linears(actor), with_plain_linears(actor_ft)
        self.K, self.ft = denoising_steps, ft_steps
        self.min_std, self.min_lp_std, self.randn_clip, self.denoised_clip = (min_sampling_std, min_logprob_std,
                                                                             randn_clip, denoised_clip)
        t = ddpm_tables(denoising_steps)
        f = {k: torch.tensor(v, dtype=torch.float32) for k, v in t.as_dict().items()}
        self.sqrt_recip, self.sqrt_recipm1 = f["sqrt_recip_alphas_cumprod"], f["sqrt_recipm1_alphas_cumprod"]
        self.coef1, self.coef2 = f["posterior_mean_coef_x0"], f["posterior_mean_coef_xt"]
        self.logvar = f["posterior_log_variance_clipped"]

    def p_mean_var(self, x: torch.Tensor, t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = self.actor(x, t, state)  # the base actor runs on every row ...
        ft_idx = torch.where(t < self.ft)[0]
        if len(ft_idx) > 0:  # ... and is overwritten on the fine-tuned rows
            noise[ft_idx] = self.actor_ft(x[ft_idx], t[ft_idx], state[ft_idx])
        x0 = _extract(self.sqrt_recip, t) * x - _extract(self.sqrt_recipm1, t) * noise
        x0 = x0.clamp(-self.denoised_clip, self.denoised_clip)
        mu = _extract(self.coef1, t) * x0 + _extract(self.coef2, t) * x
        return mu, _extract(self.logvar, t)

    @torch.no_grad()
    def sample(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = state.shape[0]
        x = torch.randn(B, self.actor.config.horizon_steps, self.actor.config.action_dim)
        chain = []
        for t in reversed(range(self.K)):
            t_b = torch.full((B,), t, dtype=torch.long)
            mean, logvar = self.p_mean_var(x, t_b, state)
            std = torch.exp(0.5 * logvar).clip(min=self.min_std)
            x = mean + std * torch.randn_like(x).clamp_(-self.randn_clip, self.randn_clip)
            if t <= self.ft:
                chain.append(x)
        return x, torch.stack(chain, dim=1)

    def logprobs(self, state: torch.Tensor, chains: torch.Tensor) -> torch.Tensor:
        B = chains.shape[0]
        s = state.unsqueeze(1).repeat(1, self.ft, 1, 1).flatten(0, 1)
        t = torch.arange(self.ft - 1, -1, -1).repeat(B)
        prev = chains[:, :-1].reshape(-1, *chains.shape[2:])
        nxt = chains[:, 1:].reshape(-1, *chains.shape[2:])
        mean, logvar = self.p_mean_var(prev, t, s)
        std = torch.exp(0.5 * logvar).clip(min=self.min_lp_std)
        return torch.distributions.Normal(mean, std).log_prob(nxt)


def upstream_pretrain_loss(network: DiffusionMLP, x0: torch.Tensor, state: torch.Tensor, K: int) -> torch.Tensor:
    """DiffusionModel.loss as upstream: draw t and noise, q_sample with gathers, MSE."""
    t = ddpm_tables(K)
    sqrt_ab = torch.tensor(t.sqrt_alphas_cumprod, dtype=torch.float32)
    sqrt_1mab = torch.tensor(t.sqrt_one_minus_alphas_cumprod, dtype=torch.float32)
    tt = torch.randint(0, K, (x0.shape[0],))
    noise = torch.randn_like(x0)
    xt = _extract(sqrt_ab, tt) * x0 + _extract(sqrt_1mab, tt) * noise
    return nn.functional.mse_loss(network(xt, tt, state), noise)


def as_float(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, np.float32))
