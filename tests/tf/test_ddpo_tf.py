"""DDPO agent behaviour of the TensorFlow twin (cases shared with tests/torch in tests/ddpo_agent_cases.py)."""

from core_tf.runtime.canonical import export_state
from tests import ddpo_agent_cases as cases


def test_kl_only_updates_bring_the_policy_back_to_the_reference():
    cases.kl_only_updates_bring_the_policy_back_to_the_reference("tf")


def test_iskl_reference_never_changes():
    cases.reference_never_changes("tf", export_state)
