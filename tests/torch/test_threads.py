"""Fine-tuning's thread settings per phase: one thread for rollouts, all cores for the update."""

import os

import torch

from dppo.envs.runtime import set_rollout_threads, set_update_threads


def test_rollouts_use_one_thread_and_updates_all_cores_unless_overridden(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("DPPO_TORCH_THREADS", raising=False)
        monkeypatch.delenv("DPPO_TORCH_UPDATE_THREADS", raising=False)
        set_rollout_threads("torch")
        assert torch.get_num_threads() == 1
        set_update_threads("torch")
        assert torch.get_num_threads() == (os.cpu_count() or 1)
        monkeypatch.setenv("DPPO_TORCH_UPDATE_THREADS", "1")
        set_update_threads("torch")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
