"""DPPO agent behaviour of the TensorFlow twin (cases shared with tests/torch in tests/dppo_agent_cases.py)."""

import tensorflow as tf

from tests import dppo_agent_cases as cases


def _terms(agent, batch):
    return {k: float(v) for k, v in agent.loss_terms({k: tf.constant(v) for k, v in batch.items()}).items()}


def test_deterministic_ddim_ignores_eta():
    cases.deterministic_ddim_ignores_eta("tf")


def test_advantages_are_quantile_clipped_without_norm_adv():
    cases.quantile_clip_without_norm_adv("tf", _terms)


def _eta_params(agent):
    return {n: v.numpy().copy() for n, v in agent.eta_named}


def test_in_graph_eta_matches_fixed_tables():
    cases.in_graph_eta_matches_fixed_tables("tf")


def test_eps_clip_changes_the_chain():
    cases.eps_clip_changes_the_chain("tf")


def test_eta_optimizer_steps_on_interval():
    cases.eta_optimizer_steps_on_interval("tf", _eta_params)


def test_annealing_shrinks_k_and_resumes():
    cases.annealing_shrinks_k_and_resumes("tf")


def test_chunked_evaluate_matches():
    cases.chunked_evaluate_matches("tf")
