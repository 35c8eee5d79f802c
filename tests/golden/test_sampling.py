"""Sampling chains and chain log-probabilities of both twins against upstream DiffusionModel and PPODiffusion."""

from __future__ import annotations

import numpy as np
import pytest

from tests.golden.golden import Case, assert_matches_upstream, cases
from tests.golden.twins import critic_config, diffusion_config, dppo_settings, eta_settings, with_critic, with_eta

CRITIC = {"cond_dim": 3, "mlp_dims": [16, 16]}
def _eval_sample(case: Case, backend: str) -> dict[str, np.ndarray]:
    dc = diffusion_config(case.meta["diffusion"])
    params = {f"network.{k}": v for k, v in case.params().items()}
    det = case.meta["deterministic"]
    if backend == "torch":
        import torch

        import core_torch.runtime.canonical as io
        from core_torch.diffusion.model import DiffusionModel

        model = DiffusionModel(dc)
        io.load_state(model, params)
        out = model.sample(torch.from_numpy(case.inp["state"]), torch.from_numpy(case.inp["noise"]), det)
        return {"actions": out.trajectories.numpy()}
    import core_tf.runtime.canonical as io
    from core_tf.diffusion.model import DiffusionModel

    model = DiffusionModel(dc)
    io.load_state(model, params)
    return {"actions": model.sample(case.inp["state"], case.inp["noise"], det).trajectories.numpy()}


def _ft_model(case: Case, backend: str) -> object:
    dc = diffusion_config(case.meta["diffusion"])
    critic = critic_config(CRITIC)
    params = with_eta(with_critic(case.params(), critic), eta_settings(case.meta))
    if backend == "torch":
        import core_torch.runtime.canonical as io
        from core_torch.algorithms.ppo_diffusion import PPODiffusionModel
    else:
        import core_tf.runtime.canonical as io
        from core_tf.algorithms.ppo_diffusion import PPODiffusionModel
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
@pytest.mark.parametrize("name", FIXED)
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
    """Upstream's EtaAction (a learnable logit per action dim): its eta values, the chain it samples and
    the log-probabilities of upstream's chain (manifest entry 'eta_fixture')."""
    case = Case("sampling", name)
    out = _ft_sample(case, backend)
    for key in ("actions", "chains", "logprobs"):
        assert_matches_upstream(out[key], case, key, backend)
    if "eta" in case.up32:
        state = case.inp["state"]
        eta = _ft_model(case, backend).eta_values(_tensor(state, backend))
        assert_matches_upstream(np.asarray(eta), case, "eta", backend)


def _tensor(x: np.ndarray, backend: str) -> object:
    if backend == "torch":
        import torch

        return torch.from_numpy(x)
    import tensorflow as tf

    return tf.constant(x)
