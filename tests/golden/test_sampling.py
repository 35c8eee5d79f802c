"""Sampling chains and chain log-probabilities of both twins against upstream DiffusionModel and PPODiffusion."""

from __future__ import annotations

import numpy as np
import pytest

from tests.golden.golden import Case, assert_matches_upstream, cases
from tests.golden.twins import critic_config, diffusion_config, dppo_settings, has_eta_api, with_critic

CRITIC = {"cond_dim": 3, "mlp_dims": [16, 16]}
KNOWN = {
    "ft_ddim_det_eta_fixed": pytest.mark.xfail(
        strict=True, raises=AssertionError,
        reason="issue 10 item 1: deterministic DDIM keeps the configured eta in the mean; "
        "upstream uses eta = 0 when deterministic"),
}


def _param(name: str) -> object:
    return pytest.param(name, marks=KNOWN[name]) if name in KNOWN else name


def _eval_sample(case: Case, backend: str) -> dict[str, np.ndarray]:
    dc = diffusion_config(case.meta["diffusion"])
    params = {f"network.{k}": v for k, v in case.params().items()}
    det = case.meta["deterministic"]
    if backend == "torch":
        import torch

        import core_torch.canonical as io
        from core_torch.diffusion import DiffusionModel

        model = DiffusionModel(dc)
        io.load_state(model, params)
        out = model.sample(torch.from_numpy(case.inp["state"]), torch.from_numpy(case.inp["noise"]), det)
        return {"actions": out.trajectories.numpy()}
    import core_tf.canonical as io
    from core_tf.diffusion import DiffusionModel

    model = DiffusionModel(dc)
    io.load_state(model, params)
    return {"actions": model.sample(case.inp["state"], case.inp["noise"], det).trajectories.numpy()}


def _ft_model(case: Case, backend: str) -> object:
    dc = diffusion_config(case.meta["diffusion"])
    critic = critic_config(CRITIC)
    params = with_critic(case.params(), critic)
    if backend == "torch":
        import core_torch.canonical as io
        from core_torch.ppo_diffusion import PPODiffusionModel
    else:
        import core_tf.canonical as io
        from core_tf.ppo_diffusion import PPODiffusionModel
    model = PPODiffusionModel(dc, critic, dppo_settings(case.meta))
    io.load_state(model, params)
    return model


def _ft_sample(case: Case, backend: str) -> dict[str, np.ndarray]:
    model = _ft_model(case, backend)
    det = case.meta["deterministic"]
    if backend == "torch":
        import torch

        state = torch.from_numpy(case.inp["state"])
        actions, chains = model.sample(state, torch.from_numpy(case.inp["noise"]), det)
        with torch.no_grad():
            lp = model.logprobs(state, torch.from_numpy(case.up32["chains"]))
        return {"actions": actions.numpy(), "chains": chains.numpy(), "logprobs": lp.numpy()}
    import tensorflow as tf

    state = tf.constant(case.inp["state"])
    actions, chains = model.sample(state, tf.constant(case.inp["noise"]), det)
    lp = model.logprobs(state, tf.constant(case.up32["chains"]))
    return {"actions": actions.numpy(), "chains": chains.numpy(), "logprobs": lp.numpy()}


EVAL = [n for n in cases("sampling") if Case("sampling", n).meta["kind"] == "eval"]
FT = [n for n in cases("sampling") if Case("sampling", n).meta["kind"] == "finetune"]
LEARNED_ETA = [n for n in FT if (Case("sampling", n).meta["eta"] or {}).get("kind") == "EtaAction"]
FIXED = [n for n in FT if n not in LEARNED_ETA]


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", EVAL)
def test_evaluation_chain_matches_upstream_diffusion_model(name: str, backend: str) -> None:
    case = Case("sampling", name)
    assert_matches_upstream(_eval_sample(case, backend)["actions"], case, "actions", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", [_param(n) for n in FIXED])
def test_finetuning_chain_matches_upstream_ppo_diffusion(name: str, backend: str) -> None:
    case = Case("sampling", name)
    out = _ft_sample(case, backend)
    for key in ("actions", "chains"):
        assert_matches_upstream(out[key], case, key, backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", FIXED)
def test_chain_logprobs_match_upstream_get_logprobs(name: str, backend: str) -> None:
    case = Case("sampling", name)
    assert_matches_upstream(_ft_sample(case, backend)["logprobs"], case, "logprobs", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", LEARNED_ETA)
def test_learned_eta_chain_and_logprobs_match_upstream(name: str, backend: str) -> None:
    import importlib

    module = importlib.import_module(f"core_{backend}.ppo_diffusion")
    if not has_eta_api(module):
        pytest.skip("issue 10 item 3: our twins have no learnable DDIM eta (upstream EtaAction, param "
                    "eta.eta_logit); the fixture and its manifest entry 'eta_fixture' describe what to compare")
    raise AssertionError("an eta API exists now: wire this test to it (see the manifest's eta_fixture)")
