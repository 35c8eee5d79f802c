"""Both twins of SAC, RLPD, IBRL and Cal-QL against upstream's SAC_Gaussian, RLPD_Gaussian, IBRL_Gaussian and
CalQL_Gaussian on recorded weights, minibatches and noise: every critic, actor and temperature loss with its
gradient w.r.t. the parameters its optimizer moves (the ensembles' per member), and IBRL's acting (greedy,
soft, deterministic)."""

from __future__ import annotations

import importlib
import statistics
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from shared.lr_schedule import CosineWarmupRestarts
from shared.param_spec import CriticObsActConfig, GaussianMLPConfig
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream

SECTION = "gaussian_offpolicy"
AGENTS = {"sac": "SACGaussianAgent", "rlpd": "RLPDGaussianAgent", "ibrl": "IBRLGaussianAgent",
          "calql": "CalQLGaussianAgent"}


def _cfg(cls: type, meta: dict) -> Any:
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta.items()})


def _agent(algo: str, backend: str, **settings: Any) -> tuple[Any, Any, Case]:
    """Our agent of `algo` with the recorded weights, and its core module."""
    weights = Case(SECTION, f"{algo}_weights")
    meta = weights.meta
    flat = CosineWarmupRestarts(first_cycle_steps=1, max_lr=1e-3, min_lr=1e-3)
    s = SimpleNamespace(actor_lr=1e-3, critic_lr=1e-3, actor_weight_decay=0.0, critic_weight_decay=0.0,
                        actor_schedule=flat, critic_schedule=flat, n_train_itr=10, init_temperature=meta["alpha"],
                        randn_clip_value=meta["randn_clip_value"], tanh_output=meta.get("tanh_output", False),
                        gamma=meta["gamma"], target_entropy=meta.get("target_entropy", 0.0),
                        n_critics=meta.get("n_critics", 2), horizon_steps=meta["actor"]["horizon_steps"],
                        action_dim=meta["actor"]["action_dim"], target_ema_rate=0.005,
                        chunk=meta["actor"]["horizon_steps"] * meta["actor"]["action_dim"],
                        soft_action_sample=False, soft_action_sample_beta=meta.get("soft_action_sample_beta", 0.1),
                        cql_n_actions=meta.get("cql_n_actions", 1), cql_min_q_weight=meta.get("cql_min_q_weight", 0),
                        cql_clip_diff_min=meta.get("cql_clip_diff_min", -np.inf),
                        cql_clip_diff_max=meta.get("cql_clip_diff_max", np.inf), backup_entropy=False)
    for k, v in settings.items():
        setattr(s, k, v)
    mod = importlib.import_module(f"core_{backend}.algorithms.{algo}_gaussian")
    params = dict(weights.params())
    if algo != "ibrl":
        params["log_alpha"] = np.array(np.log(meta["alpha"]), np.float32)
    agent = getattr(mod, AGENTS[algo])(_cfg(GaussianMLPConfig, meta["actor"]), _cfg(CriticObsActConfig, meta["critic"]),
                                       s, params)
    return agent, mod, weights


def _loss_and_grads(backend: str, loss_fn: Any, named: list[tuple[str, Any]]) -> dict[str, np.ndarray]:
    if backend == "torch":
        import torch

        loss = loss_fn()
        grads = torch.autograd.grad(loss, [p for _, p in named])
        return {"loss": loss.detach().numpy(), **{f"grad/{n}": g.numpy() for (n, _), g in zip(named, grads)}}
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = loss_fn()
    grads = tape.gradient(loss, [v for _, v in named])
    return {"loss": loss.numpy(), **{f"grad/{n}": g.numpy() for (n, _), g in zip(named, grads)}}


def _tensors(backend: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if backend == "torch":
        import torch

        return {k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}
    import tensorflow as tf

    return {k: tf.constant(v) for k, v in arrays.items()}


def _named(agent: Any, prefix: str) -> list[tuple[str, Any]]:
    return [(n, p) for n, p in agent.model.named_parameters() if n.startswith(prefix)]


def _check(case: Case, out: dict[str, np.ndarray], prefix: str, backend: str) -> None:
    assert_matches_upstream(out["loss"], case, "loss", backend)
    assert_gradient_matches_upstream(out, case, f"grad/{prefix}", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_sac_critic_actor_and_temperature_losses_match_upstream(backend: str) -> None:
    agent, mod, w = _agent("sac", backend)
    b = _tensors(backend, w.inp)
    alpha, s = w.meta["alpha"], agent.settings
    assert w.inp["terminated"].any() and not w.inp["terminated"].all() and np.abs(w.inp["actor_noise"]).max() > 2.0
    out = _loss_and_grads(backend, lambda: mod.critic_loss(agent, b, alpha, s.gamma), _named(agent, "critic."))
    _check(Case(SECTION, "sac_critic_loss"), out, "critic.", backend)
    out = _loss_and_grads(backend, lambda: mod.actor_loss(agent.model.network, agent.model.critic, b["obs"],
                                                          b["actor_noise"], alpha, s.randn_clip_value, True),
                          _named(agent, "network."))
    _check(Case(SECTION, "sac_actor_loss"), out, "network.", backend)
    base = importlib.import_module(f"core_{backend}.algorithms.gaussian_offpolicy")
    _, logprob = agent.sample(b["obs"], b["temperature_noise"])
    out = _loss_and_grads(backend, lambda: base.temperature_loss(agent.model.log_alpha, logprob, s.target_entropy),
                          _named(agent, "log_alpha"))
    _check(Case(SECTION, "sac_temperature_loss"), out, "log_alpha", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("backup", [True, False])
def test_rlpd_ensemble_critic_loss_matches_upstream_with_and_without_the_entropy_backup(backend: str,
                                                                                       backup: bool) -> None:
    agent, mod, w = _agent("rlpd", backend, backup_entropy=backup)
    b = _tensors(backend, w.inp)
    pair = w.inp["permutation"][:2]
    out = _loss_and_grads(backend, lambda: mod.critic_loss(agent, b, pair, w.meta["alpha"], agent.settings),
                          _named(agent, "critic_networks."))
    _check(Case(SECTION, f"rlpd_critic_loss_backup{int(backup)}"), out, "critic_networks.", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_rlpd_actor_loss_over_the_ensemble_mean_matches_upstream(backend: str) -> None:
    agent, mod, w = _agent("rlpd", backend)
    b, s = _tensors(backend, w.inp), agent.settings
    out = _loss_and_grads(backend, lambda: mod.actor_loss(agent.model.network, agent.model.critic_networks, b["obs"],
                                                          b["actor_noise"], w.meta["alpha"], s.randn_clip_value,
                                                          True), _named(agent, "network."))
    _check(Case(SECTION, "rlpd_actor_loss"), out, "network.", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_ibrl_critic_and_actor_losses_match_upstream(backend: str) -> None:
    agent, mod, w = _agent("ibrl", backend)
    b, s = _tensors(backend, w.inp), agent.settings
    pair = w.inp["permutation"][:2]
    out = _loss_and_grads(backend, lambda: mod.critic_loss(agent, b, pair, s.gamma), _named(agent, "critic_networks."))
    _check(Case(SECTION, "ibrl_critic_loss"), out, "critic_networks.", backend)
    out = _loss_and_grads(backend, lambda: mod.actor_loss(agent.model.network, agent.model.critic_networks, b["obs"],
                                                          b["actor_noise"], s.randn_clip_value),
                          _named(agent, "network."))
    _check(Case(SECTION, "ibrl_actor_loss"), out, "network.", backend)


def _ibrl_step_noise(w: Case) -> np.ndarray:
    """The recorded draws as one IBRL step's noise (shared/algorithms/gaussian_replay.py's layout): normals whose
    argsort is the permutation, both proposals' noise, and the normal whose CDF is the soft pick's draw."""
    perm, u = w.inp["permutation"], w.inp["uniform"]
    ranks = np.empty(len(perm))
    ranks[perm] = np.arange(len(perm))
    z_pick = np.array([statistics.NormalDist().inv_cdf(float(x)) for x in u])
    rows = np.concatenate([w.inp["act_bc_noise"], w.inp["act_rl_noise"], z_pick[:, None]], axis=1)
    return np.concatenate([ranks, rows.ravel()]).astype(np.float32)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", ["ibrl_act_greedy", "ibrl_act_soft", "ibrl_act_deterministic"])
def test_ibrl_picks_between_the_two_proposals_as_upstream(backend: str, name: str) -> None:
    case = Case(SECTION, name)
    agent, _, w = _agent("ibrl", backend, soft_action_sample=case.meta["soft"])
    out = agent.act(w.inp["obs"], _ibrl_step_noise(w), case.meta["deterministic"])
    assert_matches_upstream(out["actions"], case, "actions", backend)
    if name == "ibrl_act_soft":
        assert 0 < out["from_bc"].sum() < len(out["from_bc"])  # both proposals are executed somewhere


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_calql_critic_loss_with_the_calibrated_regulariser_and_actor_loss_match_upstream(backend: str) -> None:
    agent, mod, w = _agent("calql", backend)
    b, s = _tensors(backend, w.inp), agent.settings
    out = _loss_and_grads(backend, lambda: mod.critic_loss(agent, b, w.meta["alpha"]), _named(agent, "critic."))
    _check(Case(SECTION, "calql_critic_loss"), out, "critic.", backend)
    out = _loss_and_grads(backend, lambda: mod.actor_loss(agent.model.network, agent.model.critic, b["obs"],
                                                          b["actor_noise"], w.meta["alpha"], s.randn_clip_value,
                                                          True), _named(agent, "network."))
    _check(Case(SECTION, "calql_actor_loss"), out, "network.", backend)
