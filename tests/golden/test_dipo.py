"""Both DIPO twins against upstream DIPODiffusion: the sampler runs the target actor, and the double-Q
critic loss (next actions from the target actor, bootstrapped from the target critic) with its gradient."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from shared.param_spec import CriticObsActConfig
from shared.settings import load_settings
from shared.settings.dipo import DIPOConfig
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream
from tests.golden.twins import _tuples, diffusion_config

DIPO_CONFIG = "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2/ft_dipo_diffusion_mlp.yaml"


def _agent(backend: str, case: Case):
    import importlib

    cfg = load_settings(DIPO_CONFIG, ["base_policy_path=null"], ("finetune",))
    assert isinstance(cfg, DIPOConfig)
    settings = dataclasses.replace(cfg.dipo, min_sampling_denoising_std=case.meta["min_sampling_denoising_std"],
                                   gamma=case.meta.get("gamma", cfg.dipo.gamma))
    agent_cls = importlib.import_module(f"core_{backend}.algorithms.dipo_diffusion").DIPODiffusionAgent
    return agent_cls(diffusion_config(case.meta["diffusion"]), CriticObsActConfig(**_tuples(case.meta["critic"])),
                     settings, case.params())


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_rollout_sampler_runs_the_target_actor_as_upstream(backend: str) -> None:
    case = Case("dipo", "sample_target_actor")
    out = _agent(backend, case).act(case.inp["state"], case.inp["noise"], deterministic=False)["actions"]
    assert_matches_upstream(out, case, "actions", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_double_q_critic_loss_and_gradient_match_upstream(backend: str) -> None:
    case = Case("dipo", "critic_loss")
    agent, i = _agent(backend, case), case.inp
    batch = {"obs": i["state"], "next_obs": i["next_state"], "actions": i["actions"], "rewards": i["rewards"],
             "terminated": i["terminated"], "next_noise": i["noise"]}
    assert 0 < i["terminated"].sum() < len(i["terminated"])
    if backend == "torch":
        import torch

        named = [(n, p) for n, p in agent.model.named_parameters() if n.startswith("critic.")]
        loss = agent.critic_loss({k: torch.from_numpy(v) for k, v in batch.items()})
        grads = [g.numpy() for g in torch.autograd.grad(loss, [p for _, p in named])]
        loss = loss.detach().numpy()
    else:
        import tensorflow as tf

        named = [(n, v) for n, v in agent.model.named_parameters() if n.startswith("critic.")]
        with tf.GradientTape() as tape:
            loss = agent.critic_loss({k: tf.constant(v) for k, v in batch.items()})
        grads = [g.numpy() for g in tape.gradient(loss, [v for _, v in named])]
        loss = loss.numpy()
    out = {"loss": np.asarray(loss), **{f"grad/{n}": g for (n, _), g in zip(named, grads)}}
    assert_matches_upstream(out["loss"], case, "loss", backend)
    assert_gradient_matches_upstream(out, case, "grad/critic.", backend)
