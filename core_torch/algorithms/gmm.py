"""A GMM policy (upstream model/common/gmm.py GMMModel), torch side: the mixture's log-density, its approximate
entropy and mean std, sampling from numpy's draws, and the pre-training loss. Any network giving
(means, stds, logits) works; upstream's MixtureSameFamily of Independent Normals is written out.

Shapes: B rows, M modes, D = Ta * Da (the flattened action chunk). A network of role "gmm" maps states
(B, To, Do) to means (B, M, D), stds (B, M, D) and mixture logits (B, M).
"""

from __future__ import annotations

import torch
from torch import nn

from core_torch.algorithms.ppo_loss import normal_entropy, normal_logprob
from shared.algorithms.gmm import DETERMINISTIC_STD


def mixture_logprob(x: torch.Tensor, means: torch.Tensor, stds: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log p(x) (B,) of x (B, D): logsumexp over modes of log softmax(logits) + that mode's diagonal Normal
    log-density."""
    component = normal_logprob(x[:, None, :], means, stds).sum(-1)  # (B, M)
    return torch.logsumexp(torch.log_softmax(logits, -1) + component, -1)


def mixture_entropy(stds: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Upstream's approximate entropy (scalar): the batch mean of the weight-averaged modes' entropies."""
    component = normal_entropy(stds).sum(-1)  # (B, M)
    return (torch.softmax(logits, -1) * component).sum(-1).mean()


def mixture_std(stds: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The std upstream logs (scalar): the batch mean of the weight-averaged modes' mean stds."""
    return (torch.softmax(logits, -1) * stds.mean(-1)).sum(-1).mean()


def choose_modes(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Mode index (B,) drawn from Categorical(logits) (B, M) by inverse CDF at u (B,) in [0, 1)."""
    cdf = torch.cumsum(torch.softmax(logits, -1), -1)  # (B, M)
    return (cdf <= u[:, None]).sum(-1).clamp(max=logits.shape[-1] - 1)


def sample_mixture(means: torch.Tensor, stds: torch.Tensor, logits: torch.Tensor, eps: torch.Tensor, u: torch.Tensor,
                   deterministic: bool) -> torch.Tensor:
    """A chunk (B, D) per row: mode k from u, then means[k] + stds[k] * eps (eps (B, D)); deterministic replaces
    every std by DETERMINISTIC_STD (upstream still samples the mode and the noise)."""
    k = choose_modes(logits, u)[:, None, None].expand(-1, 1, means.shape[-1])  # (B, 1, D)
    mean = torch.gather(means, 1, k)[:, 0]  # (B, D)
    std = torch.full_like(mean, DETERMINISTIC_STD) if deterministic else torch.gather(stds, 1, k)[:, 0]
    return mean + std * eps


def likeliest_mean(means: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The mean (B, D) of each row's most likely mode (the largest logit; the first on a tie): the policy's
    noiseless action (served deterministically; upstream's deterministic acting still draws the mode)."""
    k = logits.argmax(-1)[:, None, None].expand(-1, 1, means.shape[-1])  # (B, 1, D)
    return torch.gather(means, 1, k)[:, 0]


class GMMModel(nn.Module):
    """Upstream GMMModel's training half: the network under `network.` and its loss."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def loss(self, actions: torch.Tensor, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, approximate entropy) of actions (B, Ta, Da) given states (B, To, Do): the mean negative mixture
        log-density of the flattened chunks (upstream takes no entropy bonus here)."""
        means, stds, logits = self.network(states)
        logprob = mixture_logprob(actions.reshape(len(actions), -1), means, stds, logits)  # (B,)
        return -logprob.mean(), mixture_entropy(stds, logits)
