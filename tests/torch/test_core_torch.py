"""Unit tests of the PyTorch twin on its own (names, init, sampler contract)."""

import os
import shutil

import numpy as np
import pytest
import torch

from core_torch.diffusion.model import DiffusionModel
from core_torch.networks.critic import CriticObs
from core_torch.networks.diffusion_mlp import DiffusionMLP
from core_torch.networks.mlp import MLP
from core_torch.runtime.canonical import export_state, load_state
from shared.errors import CheckpointError
from shared.param_spec import CriticObsConfig, critic_obs_spec, diffusion_mlp_spec
from shared.settings import load_settings

HOPPER = load_settings("configs/hopper/pretrain_diffusion_mlp.yaml").model


def test_parameter_names_and_shapes_are_the_canonical_spec():
    model = DiffusionModel(HOPPER)
    assert {n: tuple(p.shape) for n, p in model.named_parameters()} == dict(
        diffusion_mlp_spec(HOPPER.network, "network."))
    critic = CriticObs(11, [256, 256, 256], "Mish", residual_style=True)
    assert [n for n, _ in critic.named_parameters()] == list(
        critic_obs_spec(CriticObsConfig(11, (256, 256, 256), "Mish", residual_style=True)))


def test_default_init_is_torch_linear_uniform():
    torch.manual_seed(0)
    net = DiffusionMLP(3, 4, 11, mlp_dims=[512, 512, 512], residual_style=True)
    w = net.mlp_mean.layers[1].l1.weight.detach().numpy()
    bound = 1 / np.sqrt(512)
    assert np.abs(w).max() <= bound
    assert w.var() == pytest.approx(bound**2 / 3, rel=0.02)


def test_sampler_shapes_reproducibility_and_final_clip():
    model = DiffusionModel(HOPPER)
    state = torch.zeros(5, 1, 11)
    a = model.sample(state, return_chain=True, generator=torch.Generator().manual_seed(1))
    b = model.sample(state, return_chain=True, generator=torch.Generator().manual_seed(1))
    assert a.trajectories.shape == (5, 4, 3) and a.chains.shape == (5, 21, 4, 3)
    torch.testing.assert_close(a.chains, b.chains, rtol=0, atol=0)
    assert model.sample(state).chains is None


def test_dropout_only_in_training_mode():
    mlp = MLP([4, 16, 2], "ReLU", dropout=0.5)
    x = torch.ones(64, 4)
    mlp.eval()
    torch.testing.assert_close(mlp(x), mlp(x))
    mlp.train()
    assert not torch.equal(mlp(x), mlp(x))


def test_strict_load_names_the_bad_tensor():
    model = DiffusionModel(HOPPER)
    state = export_state(model)
    state["network.mlp_mean.layers.0.weight"] = state["network.mlp_mean.layers.0.weight"][:, :-1]
    with pytest.raises(CheckpointError, match="network.mlp_mean.layers.0.weight"):
        load_state(model, state)


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++") or os.environ.get("CXX")),
                    reason="torch.compile needs a C++ compiler")
def test_compiled_small_batch_sampling_gives_the_eager_chain_and_sees_weight_updates():
    """DPPO_TORCH_COMPILE's path (torch.compile below MIN_ROWS rows) samples the same chain as the
    eager model, also after the fine-tuned actor's weights change in place (as an update does)."""
    from dppo.algorithms.agents import make_agent

    # a 5-step chain (2 base steps, 3 fine-tuned): torch.compile unrolls it, so each step costs compile time
    cfg = load_settings("configs/hopper/finetune_ppo_diffusion_mlp.yaml", [
        "base_policy_path=null", "model.actor.mlp_dims=[32,32,32]", "model.critic.mlp_dims=[16,16,16]",
        "denoising_steps=5", "ft_denoising_steps=3"])
    agent = make_agent(cfg, "torch")
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (1, 1, 11)).astype(np.float32)
    noise = rng.standard_normal((6, 1, 4, 3)).astype(np.float32)

    def both() -> tuple[np.ndarray, np.ndarray]:
        agent.compile_small_batches = True
        compiled = agent.act(obs, noise, False)["chains"]
        agent.compile_small_batches = False
        return compiled, agent.act(obs, noise, False)["chains"]

    compiled, eager = both()
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        for p in agent.model.actor_ft.parameters():
            p.mul_(1.5)
    compiled_after, eager_after = both()
    assert np.abs(eager_after - eager).max() > 1e-3
    np.testing.assert_allclose(compiled_after, eager_after, rtol=1e-5, atol=1e-6)
