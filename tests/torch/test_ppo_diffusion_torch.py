"""DPPO agent behaviour of the PyTorch twin (cases shared with tests/tf in tests/dppo_agent_cases.py)."""

import torch

from tests import dppo_agent_cases as cases


def _terms(agent, batch):
    terms = agent.loss_terms({k: torch.from_numpy(v) for k, v in batch.items()})
    return {k: float(v.detach()) for k, v in terms.items()}


def test_deterministic_ddim_ignores_eta():
    cases.deterministic_ddim_ignores_eta("torch")


def test_advantages_are_quantile_clipped_without_norm_adv():
    cases.quantile_clip_without_norm_adv("torch", _terms)
