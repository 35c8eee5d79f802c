"""Both twins' Unet1D against upstream's on the same weights (output, input gradients and every parameter's
gradient), the spec against upstream's state_dict for every Unet1D config upstream ships, and our numpy
initialisation against upstream's fresh one (scripts/golden/unet.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import shared.param_spec.base as spec_base
from shared.param_spec import torch_default_init
from shared.param_spec.unet import Unet1DConfig, unet_spec
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream, cases

SECTION = "unet"
RUN_CASES = [c for c in cases(SECTION) if not c.startswith("shipped:")]
SHIPPED_CASES = [c for c in cases(SECTION) if c.startswith("shipped:")]
REPO = Path(__file__).resolve().parents[2]
VENDORED = REPO / "tests/fixtures/upstream_cfg/cfg"


def _config(meta: dict) -> Unet1DConfig:
    return Unet1DConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()})


def _torch(case: Case, cfg: Unet1DConfig) -> dict[str, np.ndarray]:
    import torch

    import core_torch.runtime.canonical as io
    from core_torch.networks.unet import Unet1D

    net = Unet1D.from_config(cfg)
    io.load_state(net, case.params())
    x = torch.from_numpy(case.inp["x"]).requires_grad_(True)
    state = torch.from_numpy(case.inp["state"]).requires_grad_(True)
    out = net(x, torch.from_numpy(case.inp["t"]), state)
    names, params = zip(*net.named_parameters())
    grads = torch.autograd.grad((out * torch.from_numpy(case.inp["cot"])).sum(), [x, state, *params])
    res = {"out": out.detach().numpy(), "dx": grads[0].numpy(), "dstate": grads[1].numpy()}
    res.update({f"grad/{n}": g.numpy() for n, g in zip(names, grads[2:])})
    return res


def _tf(case: Case, cfg: Unet1DConfig) -> dict[str, np.ndarray]:
    import tensorflow as tf

    import core_tf.runtime.canonical as io
    from core_tf.networks.unet import Unet1D

    net = Unet1D.from_config(cfg)
    io.load_state(net, case.params())
    x, state = tf.constant(case.inp["x"]), tf.constant(case.inp["state"])
    names, variables = zip(*net.named_parameters())
    with tf.GradientTape() as tape:
        tape.watch([x, state])
        out = net(x, tf.constant(case.inp["t"]), state)
        objective = tf.reduce_sum(out * case.inp["cot"])
    grads = tape.gradient(objective, [x, state, *variables])
    res = {"out": out.numpy(), "dx": grads[0].numpy(), "dstate": grads[1].numpy()}
    res.update({f"grad/{n}": g.numpy() for n, g in zip(names, grads[2:])})
    return res


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", RUN_CASES)
def test_unet_output_and_gradients_match_upstream(name: str, backend: str) -> None:
    case = Case(SECTION, name)
    cfg = _config(case.meta)
    assert case.inp["x"].shape[1] == case.meta["horizon"]
    ours = (_torch if backend == "torch" else _tf)(case, cfg)
    for key in ("out", "dx", "dstate"):
        assert_matches_upstream(ours[key], case, key, backend)
    assert_gradient_matches_upstream(ours, case, "grad/", backend)


def test_the_run_cases_cover_every_option():
    cfgs = [_config(Case(SECTION, n).meta) for n in RUN_CASES]
    assert {c.cond_predict_scale for c in cfgs} == {True, False}
    assert {(c.cond_mlp_dims is not None, c.smaller_encoder) for c in cfgs} >= {(False, False), (False, True),
                                                                                (True, False)}
    assert {c.n_groups is None for c in cfgs} == {True, False}
    assert {c.activation_type for c in cfgs} == {"Mish", "ReLU"}
    assert {len(c.dim_mults) for c in cfgs} == {1, 2, 3}
    assert {Case(SECTION, n).meta["horizon"] for n in RUN_CASES} >= {4, 8, 16}


# ------------------------------------------------ upstream's shipped configs: names, shapes, initialisation


def test_every_vendored_unet_config_has_its_upstream_state_dict_recorded() -> None:
    from shared.config.loading import load_config

    vendored = set()
    for path in VENDORED.glob("*/*/*/*.yaml"):
        model = load_config(path).get("model", {})
        if any(isinstance(s, dict) and s.get("_target_") in Unet1DConfig.UPSTREAM_TARGETS
               for s in (model.get("network"), model.get("actor"))):
            vendored.add(str(path.relative_to(REPO)))
    assert len(vendored) == 8  # robomimic's pre_ and ft_ppo_diffusion_unet for lift, can, square, transport
    recorded = {Case(SECTION, n).meta["config"] for n in SHIPPED_CASES}
    assert vendored == {r for r in recorded if r.startswith("tests/")}
    assert len(recorded - vendored) == 12  # and furniture's 12, read from upstream's checkout


def _shipped(name: str) -> tuple[Case, Unet1DConfig]:
    """The case and our config, read from the recorded section as the registered family its _target_ names."""
    from shared.config.reader import read
    from shared.param_spec.families import NETWORK_FAMILIES

    case = Case(SECTION, name)
    target = Unet1DConfig.UPSTREAM_TARGETS[0]
    (family,) = [f for f in NETWORK_FAMILIES if target in f.config.UPSTREAM_TARGETS]
    assert (family.name, family.role) == ("unet", "denoiser")
    cfg = read(family.config, {"_target_": target, **case.meta["section"]}, "model.network")
    return case, cfg


@pytest.mark.parametrize("name", SHIPPED_CASES)
def test_spec_equals_upstream_state_dict_for_shipped_configs(name: str) -> None:
    case, cfg = _shipped(name)
    rows = [r.decode().split() for r in case.inp["state_dict"]]
    upstream = {r[0]: tuple(int(d) for d in r[1:]) for r in rows}
    spec = unet_spec(cfg)
    assert list(spec) == list(upstream)  # names, in upstream's order
    assert dict(spec) == upstream  # shapes


MIN_DRAWS = 16  # below this (a bias of a few channels) a sample's mean and std say little


def _init_disagreements(name: str) -> list[str]:
    """Our numpy init against upstream's fresh one, tensor by tensor: constants (GroupNorm's 1 and 0) equal;
    drawn tensors (torch's uniform defaults) with means and stds within 6 sampling standard errors."""
    case, cfg = _shipped(name)
    ours = torch_default_init(unet_spec(cfg), seed=5)
    bad = []
    for i, key in enumerate(ours):
        x = ours[key].astype(np.float64).ravel()
        up_mean, up_std = float(case.inp["init_mean"][i]), float(case.inp["init_std"][i])
        if up_std == 0.0:
            if not np.all(x == up_mean):
                bad.append(f"{key}: constant {up_mean:g} upstream, ours ranges {x.min():g}..{x.max():g}")
            continue
        if x.size < MIN_DRAWS:
            continue
        se = up_std * np.sqrt(2.0 / x.size)  # of a difference of two means (or, roughly, of two stds) of n draws
        if abs(x.std() - up_std) > 6 * se or abs(x.mean() - up_mean) > 6 * se:
            bad.append(f"{key}: upstream mean {up_mean:.3g} std {up_std:.3g}, ours mean {x.mean():.3g} "
                       f"std {x.std():.3g}")
    return bad


@pytest.mark.parametrize("name", SHIPPED_CASES)
def test_canonical_init_draws_what_upstream_initialises(name: str) -> None:
    assert not _init_disagreements(name)


# ------------------------------------------------ deliberate drift: the checks above see a one-line change


@pytest.mark.deliberate_drift
def test_a_linear_only_fan_in_fails_the_init_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """fan_in = weight.shape[1] (right for Linear, what the init had before convolutions) draws conv weights too
    wide: the init check sees it."""
    name = SHIPPED_CASES[0]
    assert not _init_disagreements(name)
    monkeypatch.setattr(spec_base, "fan_in", lambda shape: shape[1])
    assert any("block.0.weight" in b for b in _init_disagreements(name))


@pytest.mark.deliberate_drift
def test_film_bias_scale_order_drift_fails_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    """FiLM read as (bias, scale) instead of upstream's (scale, bias)."""
    from core_torch.networks import unet

    name = "robomimic_layout"
    test_unet_output_and_gradients_match_upstream(name, "torch")

    def bias_first(self, x, cond):
        out = self.blocks[0](x)
        embed = self.cond_encoder(cond)[:, :, None]
        out = embed[:, self.out_channels :] * out + embed[:, : self.out_channels]
        out = self.blocks[1](out)
        return out + (x if self.residual_conv is None else self.residual_conv(x))

    monkeypatch.setattr(unet.ResidualBlock1D, "forward", bias_first)
    with pytest.raises(AssertionError, match="exceeds the budget"):
        test_unet_output_and_gradients_match_upstream(name, "torch")


@pytest.mark.deliberate_drift
def test_tf_interleaved_groups_drift_fails_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    """GroupNorm groups of strided channels (c % G, what reshaping channels-last (L, C) to (L, C / G, G) gives)
    instead of torch's consecutive ones (c // (C / G))."""
    import tensorflow as tf

    import core_tf.networks.layers as layers

    name = "robomimic_layout"
    test_unet_output_and_gradients_match_upstream(name, "tf")

    def interleaved(self, x):
        shape = tf.shape(x)
        g = tf.reshape(x, [shape[0], -1, self.groups, shape[2]])  # (B, C / G, G, L): channel c in group c % G
        mean, var = tf.nn.moments(g, axes=[1, 3], keepdims=True)
        y = tf.reshape((g - mean) * tf.math.rsqrt(var + self.eps), shape)
        return y * self.weight[:, None] + self.bias[:, None]

    monkeypatch.setattr(layers.GroupNorm, "call", interleaved)
    with pytest.raises(AssertionError, match="exceeds the budget"):
        test_unet_output_and_gradients_match_upstream(name, "tf")
