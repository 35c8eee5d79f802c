"""Both twins' Gaussian_Transformer and GMM_Transformer against upstream's on the same weights (outputs and the
gradient of every parameter), and the spec against upstream's state_dict for every transformer config upstream
ships (scripts/golden/transformer.py)."""

from __future__ import annotations

import numpy as np
import pytest

import shared.param_spec.transformer as spec_module
from shared.param_spec.transformer import (
    GaussianTransformerConfig,
    GMMTransformerConfig,
    gaussian_transformer_spec,
    gmm_transformer_spec,
    transformer_init,
)
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream, cases

OUTPUTS = {"gaussian_transformer": ("mean", "std"), "gmm_transformer": ("mean", "std", "logits")}
RUN_CASES = [c for c in cases("transformer") if not c.startswith("shipped:")]
SHIPPED_CASES = [c for c in cases("transformer") if c.startswith("shipped:")]


def _config(meta: dict) -> GaussianTransformerConfig | GMMTransformerConfig:
    cls = GaussianTransformerConfig if meta["kind"] == "gaussian_transformer" else GMMTransformerConfig
    return cls(**meta["config"])


def _torch(case: Case, cfg, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    import torch

    import core_torch.runtime.canonical as io
    from core_torch.networks.transformer import GaussianTransformer, GMMTransformer

    net = (GaussianTransformer if isinstance(cfg, GaussianTransformerConfig) else GMMTransformer).from_config(cfg)
    io.load_state(net, case.params())
    outs = net(torch.from_numpy(case.inp["state"]))
    objective = sum((o * torch.from_numpy(case.inp[f"cot_{k}"])).sum() for k, o in zip(keys, outs))
    names, params = zip(*net.named_parameters())
    grads = torch.autograd.grad(objective, params, allow_unused=True)
    res = {k: o.detach().numpy() for k, o in zip(keys, outs)}
    res.update({f"grad/{n}": np.zeros(tuple(p.shape), np.float32) if g is None else g.numpy()
                for n, p, g in zip(names, params, grads)})
    return res


def _tf(case: Case, cfg, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    import core_tf.runtime.canonical as io
    from core_tf.networks.transformer import GaussianTransformer, GMMTransformer

    net = (GaussianTransformer if isinstance(cfg, GaussianTransformerConfig) else GMMTransformer).from_config(cfg)
    io.load_state(net, case.params())
    names, variables = zip(*net.named_parameters())
    with tf.GradientTape() as tape:
        outs = net(tf.constant(case.inp["state"]))
        objective = tf.add_n([tf.reduce_sum(o * case.inp[f"cot_{k}"]) for k, o in zip(keys, outs)])
    grads = tape.gradient(objective, list(variables))
    res = {k: o.numpy() for k, o in zip(keys, outs)}
    res.update({f"grad/{n}": np.zeros(tuple(v.shape), np.float32) if g is None else g.numpy()
                for n, v, g in zip(names, variables, grads)})
    return res


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", RUN_CASES)
def test_transformer_outputs_and_gradients_match_upstream(name: str, backend: str) -> None:
    case = Case("transformer", name)
    cfg = _config(case.meta)
    keys = OUTPUTS[case.meta["kind"]]
    ours = (_torch if backend == "torch" else _tf)(case, cfg, keys)
    for key in keys:
        assert_matches_upstream(ours[key], case, key, backend)
    assert_gradient_matches_upstream(ours, case, "grad/", backend)


def test_every_run_case_moves_the_std_and_weights_off_the_trivial():
    """The cases exercise what they are named for: clamped and free learned log-variances, non-uniform attention."""
    learned = Case("transformer", "gauss_learned_std")
    std = learned.up64["std"]
    assert np.isclose(std.min(), 0.05) and np.isclose(std.max(), 0.8)  # both clamp bounds are hit
    assert ((std > 0.051) & (std < 0.79)).any()  # and the interior
    logvar = Case("transformer", "gmm_learn_fixed_std").params()["logvar"]
    assert (logvar < np.log(0.01**2)).any() and (logvar > np.log(0.2**2)).any()


def _shipped(name: str) -> tuple[Case, GaussianTransformerConfig | GMMTransformerConfig, list[str]]:
    """The case, our config from the network section upstream built, upstream's state_dict names in order."""
    case = Case("transformer", name)
    cls = GaussianTransformerConfig if case.meta["target"].endswith("Gaussian_Transformer") else GMMTransformerConfig
    return case, cls(**case.meta["config"]), [r.decode().split()[0] for r in case.inp["state_dict"]]


@pytest.mark.parametrize("name", SHIPPED_CASES)
def test_spec_equals_upstream_state_dict_for_shipped_configs(name: str) -> None:
    case, cfg, _ = _shipped(name)
    spec = (gaussian_transformer_spec if isinstance(cfg, GaussianTransformerConfig) else gmm_transformer_spec)(cfg)
    rows = [r.decode().split() for r in case.inp["state_dict"]]
    upstream = {r[0]: tuple(int(d) for d in r[1:]) for r in rows if r[0] not in case.meta["constants"]}
    assert list(spec) == list(upstream)  # names, in upstream's order
    assert dict(spec) == upstream  # shapes


UNIFORM_RATIO = 1.75  # max|x| / std: sqrt(3) for a uniform tensor; a normal one of >= 96 draws stays above it
MIN_LAW_DRAWS = 64  # below this (modes_head.bias: num_modes values) the law is not told from the sample


def _init_disagreements(name: str) -> list[str]:
    """Our numpy init against upstream's fresh one, tensor by tensor: constants equal; drawn tensors of the same
    law (normal or uniform; tensors of MIN_LAW_DRAWS values or more), with means and stds within 6 sampling
    standard errors of each other."""
    case, cfg, names = _shipped(name)
    ours = transformer_init(cfg, seed=3)
    bad = []
    for i, key in enumerate(names):
        if key in case.meta["constants"]:
            continue
        x = ours[key].astype(np.float64).ravel()
        up_mean, up_std, up_max = (float(case.inp[f"init_{s}"][i]) for s in ("mean", "std", "absmax"))
        if up_std == 0.0:
            if not np.allclose(x, up_mean, rtol=1e-6, atol=0):
                bad.append(f"{key}: constant {up_mean:g} upstream, ours ranges {x.min():g}..{x.max():g}")
            continue
        n, std = x.size, x.std()
        se = up_std * np.sqrt(2.0 / n)  # of a difference of two means (or, roughly, of two stds) of n draws
        uniform_up, uniform_ours = up_max / up_std <= UNIFORM_RATIO, np.abs(x).max() / std <= UNIFORM_RATIO
        law_differs = n >= MIN_LAW_DRAWS and uniform_up != uniform_ours
        if law_differs or abs(std - up_std) > 6 * se or abs(x.mean() - up_mean) > 6 * se:
            bad.append(f"{key}: upstream mean {up_mean:.3g} std {up_std:.3g} uniform {uniform_up}, ours mean "
                       f"{x.mean():.3g} std {std:.3g} uniform {uniform_ours}")
    return bad


@pytest.mark.parametrize("name", SHIPPED_CASES)
def test_canonical_init_draws_what_upstream_initialises(name: str) -> None:
    assert not _init_disagreements(name)


# ------------------------------------------------ deliberate drift: the checks above see a one-line change

@pytest.mark.deliberate_drift
def test_init_std_drift_fails_the_init_check(monkeypatch: pytest.MonkeyPatch) -> None:
    name = SHIPPED_CASES[0]
    assert not _init_disagreements(name)
    monkeypatch.setattr(spec_module, "INIT_STD", 0.025)
    assert any("pos_emb" in b or "in_proj_weight" in b for b in _init_disagreements(name))


@pytest.mark.deliberate_drift
@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_tanh_gelu_drift_fails_golden(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """GELU's tanh approximation in place of the exact erf form (what torch's decoder layer runs for 'gelu')."""
    name = "gauss_fixed_std"
    test_transformer_outputs_and_gradients_match_upstream(name, backend)
    if backend == "torch":
        import torch

        import core_torch.networks.activations as acts
        factories = {**acts._FACTORIES, "GELU": lambda: torch.nn.GELU(approximate="tanh")}
        monkeypatch.setattr(acts, "_FACTORIES", factories)
    else:
        import core_tf.networks.activations as acts

        monkeypatch.setattr(acts, "_FUNCTIONS", {**acts._FUNCTIONS, "GELU": lambda x: acts.tf.nn.gelu(x, True)})
    with pytest.raises(AssertionError, match="exceeds the budget"):
        test_transformer_outputs_and_gradients_match_upstream(name, backend)
