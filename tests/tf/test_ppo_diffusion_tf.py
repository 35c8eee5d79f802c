"""DPPO agent behaviour of the TensorFlow twin (cases shared with tests/torch in tests/dppo_agent_cases.py)."""

import tensorflow as tf

from tests import dppo_agent_cases as cases


def _terms(agent, batch):
    return {k: float(v) for k, v in agent.loss_terms({k: tf.constant(v) for k, v in batch.items()}).items()}


def test_deterministic_ddim_ignores_eta():
    cases.deterministic_ddim_ignores_eta("tf")


def test_advantages_are_quantile_clipped_without_norm_adv():
    cases.quantile_clip_without_norm_adv("tf", _terms)
