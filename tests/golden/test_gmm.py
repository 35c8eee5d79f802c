"""Both twins' GMM policy against upstream: GMM_MLP's forward (means, scales, logits), GMMModel's pre-training loss,
entropy and gradient, sampling with injected draws (deterministic too), and PPO_GMM's log-probs, loss terms and
total-loss gradients w.r.t. the actor and the critic."""

from __future__ import annotations

import numpy as np
import pytest

from shared.algorithms.gaussian_replay import uniform_from_normal
from shared.param_spec.gmm_mlp import GMMMLPConfig
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream, cases, patch_everywhere
from tests.golden.twins import critic_config, ppo_settings

SECTION = "gmm"


def _named(kind: str) -> list[str]:
    return [n for n in cases(SECTION) if Case(SECTION, n).meta["kind"] == kind]


def _network_config(meta: dict) -> GMMMLPConfig:
    return GMMMLPConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta.items()})


def _modules(backend: str) -> tuple:
    if backend == "torch":
        import core_torch.algorithms.gmm as gmm
        import core_torch.runtime.canonical as io
        from core_torch.networks.gmm_mlp import GMMMLP
    else:
        import core_tf.algorithms.gmm as gmm
        import core_tf.runtime.canonical as io
        from core_tf.networks.gmm_mlp import GMMMLP
    return gmm, io, GMMMLP


def _tensor(x: np.ndarray, backend: str) -> object:
    if backend == "torch":
        import torch

        return torch.from_numpy(x)
    import tensorflow as tf

    return tf.constant(x)


def _numpy(t: object) -> np.ndarray:
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _model(case: Case, backend: str) -> object:
    gmm, io, GMMMLP = _modules(backend)
    model = gmm.GMMModel(GMMMLP.from_config(_network_config(case.meta["network"])))
    io.load_state(model, case.params())
    return model


def test_every_std_kind_and_case_kind_is_covered() -> None:
    metas = [Case(SECTION, n).meta for n in cases(SECTION)]
    kinds = {(m["kind"], "learned" if net["fixed_std"] is None else "learn_fixed" if net["learn_fixed_std"] else
              "fixed") for m in metas if m["kind"] != "state_dict" for net in [m.get("network") or m["actor"]]}
    stds = ("learned", "fixed", "learn_fixed")
    assert {(k, s) for k in ("forward", "loss", "sample") for s in stds} <= kinds
    assert {("ppo_loss", "learned"), ("ppo_loss", "learn_fixed"), ("ppo_logprobs", "learned")} <= kinds


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", _named("forward"))
def test_gmm_mlp_forward_matches_upstream(name: str, backend: str) -> None:
    case = Case(SECTION, name)
    model = _model(case, backend)
    means, scales, logits = (_numpy(t) for t in model.network(_tensor(case.inp["state"], backend)))
    for key, ours in (("means", means), ("scales", scales), ("logits", logits)):
        assert_matches_upstream(ours, case, key, backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", _named("loss"))
def test_gmm_pretraining_loss_entropy_and_gradient_match_upstream(name: str, backend: str) -> None:
    case = Case(SECTION, name)
    model = _model(case, backend)
    named = list(model.named_parameters())
    if backend == "torch":
        import torch

        loss, entropy = model.loss(torch.from_numpy(case.inp["actions"]), torch.from_numpy(case.inp["state"]))
        grads = [g.numpy() for g in torch.autograd.grad(loss, [p for _, p in named])]
        loss, entropy = loss.detach().numpy(), entropy.detach().numpy()
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, entropy = model.loss(tf.constant(case.inp["actions"]), tf.constant(case.inp["state"]))
        grads = [g.numpy() for g in tape.gradient(loss, [v for _, v in named])]
        loss, entropy = loss.numpy(), entropy.numpy()
    out = {f"grad/{n}": g for (n, _), g in zip(named, grads)}
    assert set(out) == {k for k in case.up32 if k.startswith("grad/")}  # every learned tensor
    assert_matches_upstream(loss, case, "loss", backend)
    assert_matches_upstream(entropy, case, "entropy", backend)
    assert_gradient_matches_upstream(out, case, "grad/network.", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", _named("sample"))
def test_gmm_sampling_with_injected_draws_matches_upstream(name: str, backend: str) -> None:
    case = Case(SECTION, name)
    model = _model(case, backend)
    gmm = _modules(backend)[0]
    means, stds, logits = model.network(_tensor(case.inp["state"], backend))
    eps, u = (_tensor(x, backend) for x in (case.inp["eps"], case.inp["u"].astype(np.float32)))
    out = _numpy(gmm.sample_mixture(means, stds, logits, eps, u, case.meta["deterministic"]))
    assert_matches_upstream(out.reshape(case.up32["actions"].shape), case, "actions", backend)


def test_step_noise_splits_into_the_chunk_noise_and_the_mode_uniform() -> None:
    from shared.algorithms.gmm import split_step_noise, step_noise_shape

    noise = np.random.default_rng(0).standard_normal(step_noise_shape(4, 6)).astype(np.float32)
    eps, u = split_step_noise(noise)
    np.testing.assert_array_equal(eps, noise[:, :6])
    np.testing.assert_allclose(u, uniform_from_normal(noise[:, 6]), rtol=1e-6)
    assert eps.dtype == u.dtype == np.float32 and ((u > 0) & (u < 1)).all()


def _agent(case: Case, backend: str, **settings: object) -> object:
    m = case.meta
    actor = _network_config(m["actor"])
    if backend == "torch":
        from core_torch.algorithms.ppo_gmm import PPOGMMAgent
    else:
        from core_tf.algorithms.ppo_gmm import PPOGMMAgent
    return PPOGMMAgent(actor, critic_config(m["critic"]), ppo_settings(**settings), case.params())


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", _named("ppo_logprobs"))
def test_ppo_gmm_logprobs_entropy_and_std_match_upstream(name: str, backend: str) -> None:
    case = Case(SECTION, name)
    agent = _agent(case, backend)
    out = agent.logprob_entropy_std(_tensor(case.inp["obs"], backend), _tensor(case.inp["actions"], backend))
    for key, ours in zip(("logprobs", "entropy", "std"), out):
        assert_matches_upstream(_numpy(ours), case, key, backend)
    _, logprobs = agent.evaluate(case.inp["obs"], {"actions": case.inp["actions"]})
    assert_matches_upstream(logprobs, case, "logprobs", f"{backend} evaluate")


def _ppo_loss(case: Case, backend: str) -> dict[str, np.ndarray]:
    m = case.meta
    agent = _agent(case, backend, norm_adv=m["norm_adv"], clip_vloss_coef=m["clip_vloss_coef"],
                   clip_ploss_coef=m["clip_ploss_coef"], ent_coef=m["ent_coef"], vf_coef=m["vf_coef"])
    batch = {k: v for k, v in case.inp.items() if not k.startswith("param/")}
    named = agent.actor_named + agent.critic_named
    if backend == "torch":
        import torch

        b = {k: torch.from_numpy(v) for k, v in batch.items()}
        terms = agent.loss_terms(b)
        loss = terms["pg_loss"] + m["ent_coef"] * terms["entropy_loss"] + m["vf_coef"] * terms["v_loss"]
        grads = [g.numpy() for g in torch.autograd.grad(loss, [p for _, p in named])]
        out = {k: v.detach().numpy() for k, v in terms.items()}
    else:
        import tensorflow as tf

        b = {k: tf.constant(v) for k, v in batch.items()}
        with tf.GradientTape() as tape:
            terms = agent.loss_terms(b)
            loss = terms["pg_loss"] + m["ent_coef"] * terms["entropy_loss"] + m["vf_coef"] * terms["v_loss"]
        grads = [g.numpy() for g in tape.gradient(loss, [v for _, v in named])]
        out = {k: v.numpy() for k, v in terms.items()}
    out.update({f"grad/{n}": g for (n, _), g in zip(named, grads)})
    return out


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", _named("ppo_loss"))
def test_ppo_gmm_loss_terms_and_gradients_match_upstream(name: str, backend: str) -> None:
    case = Case(SECTION, name)
    out = _ppo_loss(case, backend)
    # the terms, each by its own rule (pg_loss on its summands' scale); the total's rounding is pg_loss's, so it is
    # judged through its gradients, not as a number on its own (far smaller) scale
    for key in ("pg_loss", "entropy_loss", "v_loss", "clipfrac", "approx_kl", "std"):
        assert_matches_upstream(out[key], case, key, backend, case.inp["advantages"], case.meta["norm_adv"])
    for prefix in ("grad/actor.", "grad/critic."):
        assert_gradient_matches_upstream(out, case, prefix, backend)


STATE_DICTS = _named("state_dict")
_CONSTANTS = ("logvar_min", "logvar_max")  # upstream's clamp bounds: constants, not in the canonical names


def test_every_shipped_gmm_mlp_config_has_its_upstream_state_dict_recorded() -> None:
    from pathlib import Path

    from shared.config.loading import load_config

    shipped = set()
    for path in Path("tests/fixtures/upstream_cfg/cfg").glob("*/*/*/*.yaml"):
        model = load_config(path).get("model", {})
        if any(isinstance(s, dict) and s.get("_target_") in GMMMLPConfig.UPSTREAM_TARGETS
               for s in (model.get("network"), model.get("actor"))):
            shipped.add(str(path))
    assert len(shipped) == 8  # robomimic's pre_gmm_mlp and ft_ppo_gmm_mlp for lift, can, square, transport
    assert shipped == {Case(SECTION, n).meta["config"] for n in STATE_DICTS}


@pytest.mark.parametrize("name", STATE_DICTS)
def test_spec_names_and_shapes_are_upstream_state_dict_for_a_shipped_config(name: str) -> None:
    from shared.config.reader import read
    from shared.param_spec.families import GMMNetworkConfig, network_spec

    meta = Case(SECTION, name).meta
    cfg = read(GMMNetworkConfig, {"_target_": GMMMLPConfig.UPSTREAM_TARGETS[0], **meta["section"]}, "model.actor")
    upstream = {k: tuple(v) for k, v in meta["shapes"].items() if k not in _CONSTANTS}
    assert {k: tuple(v) for k, v in network_spec(cfg).items()} == upstream


@pytest.mark.deliberate_drift
@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_a_drifted_deterministic_std_in_shared_fails_the_sampling_golden(monkeypatch, backend: str) -> None:
    """shared/algorithms/gmm.py's deterministic std reaches both twins at once (parity cannot see a drift there)."""
    import core_tf.algorithms.gmm  # noqa: F401 (both twins loaded, so both are patched)
    import core_torch.algorithms.gmm  # noqa: F401
    import shared.algorithms.gmm

    name = "sample_learned_std_det1"
    test_gmm_sampling_with_injected_draws_matches_upstream(name, backend)
    patched = patch_everywhere(monkeypatch, shared.algorithms.gmm, "DETERMINISTIC_STD", 1e-3)
    assert {"core_torch.algorithms.gmm", "core_tf.algorithms.gmm"} <= set(patched)
    with pytest.raises(AssertionError, match="actions"):
        test_gmm_sampling_with_injected_draws_matches_upstream(name, backend)
