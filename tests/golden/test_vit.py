"""Both twins' image networks against upstream's on the same weights (scripts/golden/vit.py): VisionDiffusionMLP,
Gaussian_VisionMLP and ViTCritic with the ViT backbone (outputs, gradients w.r.t. proprioception, pixels and every
parameter), RandomShiftsAug on the same shifts, the specs against upstream's state_dicts for every image network
upstream's *_img configs build, and our numpy initialisation against upstream's fresh one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.config.reader import read
from shared.data.random_shifts import apply_shifts
from shared.param_spec.families import family_of, network_init, network_spec
from shared.param_spec.vit import (
    GaussianVisionMLPConfig,
    VisionDiffusionMLPConfig,
    ViTCriticConfig,
    VitEncoderConfig,
    VitSettings,
)
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream, cases

SECTION = "vit"
RUN_CASES = [c for c in cases(SECTION) if not c.startswith("shipped:") and c != "random_shifts"]
SHIPPED_CASES = [c for c in cases(SECTION) if c.startswith("shipped:")]
REPO = Path(__file__).resolve().parents[2]
VENDORED = REPO / "tests/fixtures/upstream_cfg/cfg/robomimic"
_CLASSES = {c.__name__: c for c in (VisionDiffusionMLPConfig, GaussianVisionMLPConfig, ViTCriticConfig)}


def _config(meta: dict) -> Any:
    raw = dict(meta["config"])
    bb = dict(raw.pop("backbone"))
    backbone = VitEncoderConfig(obs_shape=tuple(bb["obs_shape"]), cfg=VitSettings(**bb["cfg"]),
                                num_channel=bb["num_channel"], img_h=bb["img_h"], img_w=bb["img_w"])
    return _CLASSES[meta["kind"]](backbone=backbone, **{k: tuple(v) if isinstance(v, list) else v
                                                        for k, v in raw.items()})


def _outputs(cfg: Any) -> tuple[str, ...]:
    return ("mean", "std") if isinstance(cfg, GaussianVisionMLPConfig) else ("out",)


def _torch(case: Case, cfg: Any) -> dict[str, np.ndarray]:
    import torch

    import core_torch.networks.registry as registry
    import core_torch.runtime.canonical as io

    net = registry.build_network(cfg)
    io.load_state(net, case.params())
    state = torch.from_numpy(case.inp["state"]).requires_grad_(True)
    rgb = torch.from_numpy(case.inp["rgb"]).requires_grad_(True)
    shifts = case.inp.get("shifts")
    leaves = [state, rgb]
    if isinstance(cfg, VisionDiffusionMLPConfig):
        x = torch.from_numpy(case.inp["x"]).requires_grad_(True)
        leaves.append(x)
        outs = (net(x, torch.from_numpy(case.inp["t"]), state, rgb, shifts),)
    else:
        out = net(state, rgb, shifts)
        outs = out if isinstance(out, tuple) else (out,)
    objective = sum((o * torch.from_numpy(case.inp[f"cot_{k}"])).sum() for k, o in zip(_outputs(cfg), outs))
    names, params = zip(*net.named_parameters())
    grads = torch.autograd.grad(objective, [*leaves, *params], allow_unused=True)
    res = {k: o.detach().numpy() for k, o in zip(_outputs(cfg), outs)}
    res.update({"dstate": grads[0].numpy(), "drgb": grads[1].numpy()})
    if len(leaves) == 3:
        res["dx"] = grads[2].numpy()
    res.update({f"grad/{n}": (g.numpy() if g is not None else np.zeros(tuple(p.shape), np.float32))
                for n, p, g in zip(names, params, grads[len(leaves):])})
    return res


def _tf(case: Case, cfg: Any) -> dict[str, np.ndarray]:
    import tensorflow as tf

    import core_tf.networks.registry as registry
    import core_tf.runtime.canonical as io

    net = registry.build_network(cfg)
    io.load_state(net, case.params())
    state, rgb = tf.constant(case.inp["state"]), tf.constant(case.inp["rgb"])
    shifts = case.inp.get("shifts")
    names, variables = zip(*net.named_parameters())
    leaves = [state, rgb]
    with tf.GradientTape() as tape:
        tape.watch(leaves)
        if isinstance(cfg, VisionDiffusionMLPConfig):
            x = tf.constant(case.inp["x"])
            tape.watch(x)
            leaves.append(x)
            outs = (net(x, tf.constant(case.inp["t"]), state, rgb, shifts=shifts),)
        else:
            out = net(state, rgb, shifts=shifts)
            outs = out if isinstance(out, tuple) else (out,)
        objective = tf.add_n([tf.reduce_sum(o * case.inp[f"cot_{k}"]) for k, o in zip(_outputs(cfg), outs)])
    grads = tape.gradient(objective, [*leaves, *variables])
    res = {k: o.numpy() for k, o in zip(_outputs(cfg), outs)}
    res.update({"dstate": grads[0].numpy(), "drgb": grads[1].numpy()})
    if len(leaves) == 3:
        res["dx"] = grads[2].numpy()
    res.update({f"grad/{n}": (g.numpy() if g is not None else np.zeros(v.shape, np.float32))
                for n, v, g in zip(names, variables, grads[len(leaves):])})
    return res


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", RUN_CASES)
def test_image_network_output_and_gradients_match_upstream(name: str, backend: str) -> None:
    case = Case(SECTION, name)
    cfg = _config(case.meta)
    ours = (_torch if backend == "torch" else _tf)(case, cfg)
    for key in (*_outputs(cfg), "dstate", "drgb", *(("dx",) if "dx" in case.up32 else ())):
        assert_matches_upstream(ours[key], case, key, backend)
    assert_gradient_matches_upstream(ours, case, "grad/", backend)


def test_the_run_cases_cover_every_option() -> None:
    cfgs = [_config(Case(SECTION, n).meta) for n in RUN_CASES]
    assert {type(c) for c in cfgs} == set(_CLASSES.values())
    assert {(c.backbone.cfg.embed_style, bool(c.backbone.cfg.embed_norm)) for c in cfgs} == {
        ("embed1", False), ("embed2", False), ("embed2", True)}
    assert {c.backbone.cfg.depth for c in cfgs} == {1, 2} and {c.backbone.cfg.num_heads for c in cfgs} == {1, 2}
    assert {(c.uses_spatial_emb, c.num_img) for c in cfgs} == {(True, 1), (False, 1), (True, 2)}
    assert {c.img_cond_steps for c in cfgs} == {1, 2} and {c.augment for c in cfgs} == {True, False}
    gaussians = [c for c in cfgs if isinstance(c, GaussianVisionMLPConfig)]
    assert {(c.fixed_std is None, c.learn_fixed_std) for c in gaussians} == {(True, False), (False, False),
                                                                            (False, True)}


def _shift_twins(images: np.ndarray, shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf
    import torch

    import core_tf.networks.vit as tf_vit
    import core_torch.networks.vit as torch_vit

    return (torch_vit.random_shift(torch.from_numpy(images), shifts).numpy(),
            tf_vit.random_shift(tf.constant(images), shifts).numpy())


def test_random_shifts_match_upstream_and_the_twins_are_identical() -> None:
    case = Case(SECTION, "random_shifts")
    images, shifts = case.inp["images"], case.inp["shifts"]
    th, tf_ = _shift_twins(images, shifts)
    assert np.array_equal(th, tf_) and np.array_equal(th, apply_shifts(images, shifts))  # exact crops
    for ours, backend in ((th, "torch"), (tf_, "tf")):
        assert_matches_upstream(ours, case, "out", backend)


# ------------------------------------------------ upstream's shipped configs: names, shapes, initialisation


def test_every_vendored_image_network_has_its_upstream_state_dict_recorded() -> None:
    from shared.config.loading import load_config

    vendored = set()
    for path in VENDORED.glob("*/*/*_img.yaml"):
        model = load_config(path).get("model", {})
        for key in ("network", "actor", "critic"):
            if model.get(key, {}).get("_target_") in {t for c in _CLASSES.values() for t in c.UPSTREAM_TARGETS}:
                vendored.add(f"{path.relative_to(REPO)}:{key}")
    assert len(vendored) == 26  # 8 pre-training networks, 8 actors and 8 critics of fine-tuning, 2 eval networks
    assert vendored == {Case(SECTION, n).meta["where"] for n in SHIPPED_CASES}


def _shipped(name: str) -> tuple[Case, Any]:
    """The case and our config, read from the recorded section as the registered family its _target_ names."""
    from shared.param_spec.families import NETWORK_FAMILIES

    case = Case(SECTION, name)
    section = case.meta["section"]
    (family,) = [f for f in NETWORK_FAMILIES if section["_target_"] in f.config.UPSTREAM_TARGETS]
    cfg = read(family.config, section, case.meta["where"])
    assert family_of(cfg) is family
    return case, cfg


def _upstream_names(case: Case) -> dict[str, tuple[int, ...]]:
    rows = [r.decode().split() for r in case.inp["state_dict"]]
    return {r[0]: tuple(int(d) for d in r[1:]) for r in rows}


@pytest.mark.parametrize("name", SHIPPED_CASES)
def test_spec_equals_upstream_state_dict_for_shipped_configs(name: str) -> None:
    case, cfg = _shipped(name)
    upstream = {k: v for k, v in _upstream_names(case).items() if k not in ("logvar_min", "logvar_max")}
    spec = network_spec(cfg)
    assert list(spec) == list(upstream)  # names, in upstream's order (less Gaussian_VisionMLP's clamp constants)
    assert dict(spec) == upstream  # shapes


MIN_DRAWS = 16  # below this a sample's mean and std say little


def _init_disagreements(name: str, init: Any = network_init) -> list[str]:
    """Our numpy init against upstream's fresh one, tensor by tensor: constants (norms' 1 and 0, zero biases,
    log-variances) equal; drawn tensors with means and stds within 6 sampling standard errors, and no value beyond
    upstream's largest by more than a tenth (a truncated or bounded draw)."""
    case, cfg = _shipped(name)
    ours = init(cfg, 5)
    index = {k: i for i, k in enumerate(_upstream_names(case))}
    bad = []
    for key, value in ours.items():
        i = index[key]
        x = value.astype(np.float64).ravel()
        up_mean, up_std = float(case.inp["init_mean"][i]), float(case.inp["init_std"][i])
        if up_std == 0.0 and x.size > 1:  # (one draw has std 0 too)
            if not np.allclose(x, up_mean, rtol=1e-6, atol=0):
                bad.append(f"{key}: constant {up_mean:g} upstream, ours ranges {x.min():g}..{x.max():g}")
            continue
        if x.size < MIN_DRAWS:
            continue
        se = up_std * np.sqrt(2.0 / x.size)
        if abs(x.std() - up_std) > 6 * se or abs(x.mean() - up_mean) > 6 * se:
            bad.append(f"{key}: upstream mean {up_mean:.3g} std {up_std:.3g}, ours mean {x.mean():.3g} "
                       f"std {x.std():.3g}")
    return bad


@pytest.mark.parametrize("name", SHIPPED_CASES)
def test_canonical_init_draws_what_upstream_initialises(name: str) -> None:
    assert not _init_disagreements(name)


# ------------------------------------------------ deliberate drift: the checks above see a one-line change


@pytest.mark.deliberate_drift
def test_torch_default_init_of_the_vit_fails_the_init_check() -> None:
    """The ViT's Linear weights and position embedding drawn with torch's defaults (what the spec's generic init
    gives) instead of upstream's N(0, 0.02): the init check sees it."""
    from shared.param_spec import torch_default_init

    name = next(n for n in SHIPPED_CASES if "can:" in n)
    assert not _init_disagreements(name)
    bad = _init_disagreements(name, lambda cfg, seed: torch_default_init(network_spec(cfg), seed))
    assert any("qkv_proj.weight" in b for b in bad) and any("pos_embed" in b for b in bad)


@pytest.mark.deliberate_drift
def test_qkv_split_drift_fails_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    """qkv_proj's columns read as (head, q|k|v, d) instead of upstream's (q|k|v, head, d)."""
    import torch
    from torch.nn import functional as F

    from core_torch.networks import vit

    name = "critic"
    test_image_network_output_and_gradients_match_upstream(name, "torch")

    def heads_first(self, x):
        B, T, E = x.shape
        h = self.num_head
        q, k, v = self.qkv_proj(x).reshape(B, T, h, 3, E // h).permute(3, 0, 2, 1, 4).unbind(0)
        attn = F.softmax(q @ k.transpose(-2, -1) / (E // h) ** 0.5, dim=-1)
        return self.out_proj((attn @ v).transpose(1, 2).reshape(B, T, E))

    monkeypatch.setattr(vit.MultiHeadAttention, "forward", heads_first)
    assert torch is not None
    with pytest.raises(AssertionError, match="exceeds the budget"):
        test_image_network_output_and_gradients_match_upstream(name, "torch")


@pytest.mark.deliberate_drift
def test_shift_axes_swapped_drift_fails_golden() -> None:
    """shift[0] read as the row shift (upstream's grid puts x, the column, first): the shift check sees it."""
    case = Case(SECTION, "random_shifts")
    swapped = apply_shifts(case.inp["images"], case.inp["shifts"][:, ::-1])
    with pytest.raises(AssertionError, match="exceeds the budget"):
        assert_matches_upstream(swapped, case, "out", "numpy")
