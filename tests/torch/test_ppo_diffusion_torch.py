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


def _eta_params(agent):
    return {n: p.detach().numpy().copy() for n, p in agent.eta_named}


def test_in_graph_eta_matches_fixed_tables():
    cases.in_graph_eta_matches_fixed_tables("torch")


def test_eps_clip_changes_the_chain():
    cases.eps_clip_changes_the_chain("torch")


def test_eta_optimizer_steps_on_interval():
    cases.eta_optimizer_steps_on_interval("torch", _eta_params)


def test_annealing_shrinks_k_and_resumes():
    cases.annealing_shrinks_k_and_resumes("torch")


def test_chunked_evaluate_matches():
    cases.chunked_evaluate_matches("torch")


def test_eta_fixed_has_no_gradient_eta_action_has():
    from core_torch.diffusion.eta import Eta
    from shared.diffusion.eta import EtaConfig

    state = torch.zeros(3, 1, 2)
    fixed, action = Eta(EtaConfig("EtaFixed", 0.5)), Eta(EtaConfig("EtaAction", 0.5, action_dim=3))
    assert not fixed(state).requires_grad
    out = action(state)
    assert out.shape == (3, 3) and torch.allclose(out, torch.full((3, 3), 0.5))
    out.sum().backward()
    assert action.eta_logit.grad is not None
