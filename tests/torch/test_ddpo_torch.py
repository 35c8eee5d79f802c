"""DDPO agent behaviour of the PyTorch twin (cases shared with tests/tf in tests/ddpo_agent_cases.py)."""

from core_torch.runtime.canonical import export_state
from tests import ddpo_agent_cases as cases


def test_kl_only_updates_bring_the_policy_back_to_the_reference():
    cases.kl_only_updates_bring_the_policy_back_to_the_reference("torch")


def test_iskl_reference_never_changes():
    cases.reference_never_changes("torch", export_state)
