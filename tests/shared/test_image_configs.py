"""Upstream's *_img robomimic configs (vendored unchanged): every `model` section reads into the typed model settings
upstream's model `_target_` names, with its networks read as the image families their `_target_`s name; for Can's
pre-training and fine-tuning configs of both policy kinds, the networks build in both twins from those settings and
agree on a batch of camera frames (full size: 96x96, embed 128). The rest of these configs (camera observations,
image demos, the image agents) is not read here; a config naming an image network in a state-only loop is refused
in one line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from shared.config.loading import load_config
from shared.config.reader import read
from shared.errors import ConfigError
from shared.param_spec.families import family_of, network_init
from shared.param_spec.vit import GaussianVisionMLPConfig, VisionDiffusionMLPConfig, ViTCriticConfig
from shared.settings import read_config
from shared.settings.algorithms import ALGORITHMS
from shared.settings.model import DiffusionConfig, DiffusionPPOModelConfig, GaussianModelConfig, GaussianPPOModelConfig

UPSTREAM = Path("tests/fixtures/upstream_cfg/cfg/robomimic")
IMAGE_CONFIGS = sorted(UPSTREAM.glob("*/*/*_img.yaml"))
# upstream's model `_target_` -> the model settings that read its section
MODEL_SETTINGS = {
    "model.diffusion.diffusion.DiffusionModel": DiffusionConfig,
    "model.common.gaussian.GaussianModel": GaussianModelConfig,
    "model.diffusion.diffusion_ppo.PPODiffusion": DiffusionPPOModelConfig,
    "model.rl.gaussian_ppo.PPO_Gaussian": GaussianPPOModelConfig,
}
CAN = ["pretrain/can/pre_diffusion_mlp_img.yaml", "pretrain/can/pre_gaussian_mlp_img.yaml",
       "finetune/can/ft_ppo_diffusion_mlp_img.yaml", "finetune/can/ft_ppo_gaussian_mlp_img.yaml"]


@pytest.fixture(autouse=True)
def _dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DPPO_LOG_DIR", str(tmp_path))
    monkeypatch.setenv("DPPO_DATA_DIR", str(tmp_path))


def _model(rel: str | Path):
    raw = load_config(UPSTREAM / rel)
    return read(MODEL_SETTINGS[raw["model"]["_target_"]], raw["model"], "model")


def _networks(model) -> dict[str, object]:
    return {k: getattr(model, k) for k in ("network", "actor", "critic") if hasattr(model, k)}


def test_every_image_config_model_section_reads_with_its_image_networks() -> None:
    assert len(IMAGE_CONFIGS) == 18  # pre-training 2 x 4 tasks, fine-tuning 2 x 4 tasks, Can's 2 eval configs
    kinds = set()
    for path in IMAGE_CONFIGS:
        raw = load_config(path)
        nets = _networks(_model(path.relative_to(UPSTREAM)))
        for key, net in nets.items():
            assert net.UPSTREAM_TARGETS[0] == raw["model"][key]["_target_"], (path, key)
            assert net.backbone.num_patch == 121 and net.backbone.embed_dim == 128  # 96x96 through embed2: 11x11
            kinds.add(type(net))
        assert len(nets) == (2 if "finetune" in path.parts else 1)
    assert kinds == {VisionDiffusionMLPConfig, GaussianVisionMLPConfig, ViTCriticConfig}
    transport = [_model(p.relative_to(UPSTREAM)) for p in IMAGE_CONFIGS if "transport" in p.parts]
    assert all(n.num_img == 2 for m in transport for n in _networks(m).values())  # two cameras there


def test_the_model_keys_upstream_sets_arrive() -> None:
    pre = _model(CAN[0])
    assert pre.network.augment and pre.network.spatial_emb == 128 and pre.network.time_dim == 32
    assert pre.network.mlp_dims == (512, 512, 512) and pre.network.residual_style
    assert pre.network.backbone.cfg.embed_style == "embed2" and pre.network.backbone.num_channel == 3
    gaussian = _model(CAN[1])
    assert gaussian.network.fixed_std == 0.1 and gaussian.network.augment
    ft = _model(CAN[2])
    assert not ft.actor.augment and ft.critic.spatial_emb == 128 and ft.critic.mlp_dims == (256, 256, 256)
    assert ft.ft_denoising_steps == 5 and ft.use_ddim


def _state_config(algorithm: str) -> dict:
    """Upstream's Can config of a fine-tuning algorithm (Hopper's where upstream has no Can one: SAC)."""
    stems = (*ALGORITHMS[algorithm].upstream_configs, f"ft_{algorithm}_mlp")
    for root in (UPSTREAM / "finetune/can", UPSTREAM.parent / "gym/finetune/hopper-v2"):
        found = [root / f"{stem}.yaml" for stem in stems if (root / f"{stem}.yaml").exists()]
        if found:
            return load_config(found[0])
    raise AssertionError(f"no upstream config of {algorithm}")


NOT_PPO = [name for name in ALGORITHMS if name != "ppo"]  # upstream's image agents are DPPO and Gaussian PPO
REFUSAL = "fine-tunes state policies only; fine-tune on camera frames with PPO (DPPO or Gaussian PPO"


@pytest.mark.parametrize("algorithm", NOT_PPO)
def test_an_image_policy_network_in_a_fine_tuner_other_than_ppo_is_refused_in_one_line(algorithm: str) -> None:
    """Pre-training, evaluation and PPO read image networks (tests/cli/test_image_*_cli.py); every other fine-tuning
    algorithm of the table, given an image config's policy network (diffusion or Gaussian, as its own), refuses
    before its sections are read: one line naming the section, the network and the algorithm."""
    raw = _state_config(algorithm)
    images = {kind: load_config(UPSTREAM / f"finetune/can/ft_ppo_{kind}_mlp_img.yaml")["model"]["actor"]
              for kind in ("diffusion", "gaussian")}
    key = next(k for k in ("network", "actor", "sde") if isinstance(raw["model"].get(k), dict))
    kind = "diffusion" if "diffusion" in raw["model"][key]["_target_"].lower() else "gaussian"
    raw["model"][key] = {**images[kind], "cond_dim": raw["obs_dim"] * raw["cond_steps"]}
    title = ALGORITHMS[algorithm].title
    with pytest.raises(ConfigError, match=rf"^model\.{key} is an image network \({images[kind]['_target_']}\): "
                                          rf"{re.escape(title)} {re.escape(REFUSAL)}") as err:
        read_config(raw)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("algorithm,critic", [("idql", "critic_v"), ("awr", "critic")])
def test_an_image_critic_in_a_fine_tuner_other_than_ppo_is_refused_in_one_line(algorithm: str, critic: str) -> None:
    """A ViT value critic where the algorithm reads a state critic: the same line, not the reader's `_target_ ...
    is not supported here`."""
    raw = _state_config(algorithm)
    raw["model"][critic] = load_config(UPSTREAM / "finetune/can/ft_ppo_diffusion_mlp_img.yaml")["model"]["critic"]
    vit = re.escape("(model.common.critic.ViTCritic)")
    with pytest.raises(ConfigError, match=rf"^model\.{critic} is an image network {vit}: {algorithm.upper()} "
                                          rf"{re.escape(REFUSAL)}"):
        read_config(raw)


@pytest.mark.parametrize("algorithm", ["dipo", "rlpd"])
def test_a_camera_env_in_a_fine_tuner_other_than_ppo_is_refused_in_one_line(algorithm: str) -> None:
    """State networks over an image config's env (camera frames): refused at settings time, not in the rollout."""
    raw = _state_config(algorithm)
    raw["env"] = load_config(UPSTREAM / "finetune/can/ft_ppo_diffusion_mlp_img.yaml")["env"]
    with pytest.raises(ConfigError, match=rf"^env\.wrappers\.robomimic_image gives camera frames: "
                                          rf"{re.escape(ALGORITHMS[algorithm].title)} {re.escape(REFUSAL)}"):
        read_config(raw)


def test_grad_accumulate_beyond_an_epochs_minibatches_is_refused_in_one_line() -> None:
    """Gradients of k minibatches are summed and the optimizers step after the k-th of an epoch (upstream's rule):
    with fewer minibatches than k per epoch nothing would ever train, as a shortened run of upstream's Lift image
    config (5 envs x 75 steps, minibatch 75: 5 minibatches, grad_accumulate 15) found. Refused at settings time;
    exactly k minibatches an epoch is accepted."""
    raw = load_config(UPSTREAM / "finetune/lift/ft_ppo_diffusion_mlp_img.yaml")
    raw["env"]["n_envs"], raw["train"]["n_steps"] = 5, 75
    raw["train"]["batch_size"] = 75
    line = r"^train\.grad_accumulate=15 is more than the 5 minibatches of an update epoch \(train\.n_steps=75 x "
    with pytest.raises(ConfigError, match=line + r"env\.n_envs=5 // train\.batch_size=75\)") as err:
        read_config(raw)
    assert "\n" not in str(err.value)
    raw["train"]["batch_size"] = 25  # 375 rows: 15 minibatches, one step an epoch
    assert read_config(raw).ppo.grad_accumulate == 15


@pytest.mark.parametrize("rel", CAN)
def test_can_image_networks_build_in_both_twins_and_agree(rel: str) -> None:
    """Full-size networks from the read settings, one canonical init, a batch of 2 uint8 frames: the twins'
    outputs within float32 rounding of each other (the parity gate's rule; parity_tests/test_vision_parity.py
    compares every layer and gradient on small drawn architectures)."""
    import tensorflow as tf
    import torch

    import core_tf.networks.registry as tf_registry
    import core_tf.runtime.canonical as tf_io
    import core_torch.networks.registry as torch_registry
    import core_torch.runtime.canonical as torch_io
    from dppo.parity.report import twin_report
    from parity_tests.gate import assert_twins_agree
    from parity_tests.twins import in_compute
    from shared.data.random_shifts import draw_shifts

    rng = np.random.default_rng(0)
    for key, cfg in _networks(_model(rel)).items():  # network or actor and critic
        params = network_init(cfg, 1)
        bb = cfg.backbone
        rgb = rng.integers(0, 256, (2, cfg.img_cond_steps, 3 * cfg.num_img, bb.img_h, bb.img_w), dtype=np.uint8)
        state = rng.uniform(-1, 1, (2, 1, cfg.cond_dim)).astype(np.float32)
        shifts = draw_shifts(rng, 2, cfg.num_img) if cfg.augment else None
        x = rng.standard_normal((2, getattr(cfg, "horizon_steps", 1), getattr(cfg, "action_dim", 1)))
        t = np.array([3, 70])

        def measure(key=key, cfg=cfg, params=params, rgb=rgb, state=state, shifts=shifts, x=x, t=t):
            th, tf_ = torch_registry.build_network(cfg), tf_registry.build_network(cfg)
            torch_io.load_state(th, params)
            tf_io.load_state(tf_, params)
            th.eval()
            inputs = in_compute({"state": state, "rgb": rgb} if not isinstance(cfg, VisionDiffusionMLPConfig)
                                else {"x": x, "t": t, "state": state, "rgb": rgb})  # floats in compute dtype
            args_th = [torch.from_numpy(v) for v in inputs.values()]
            args_tf = [tf.constant(v) for v in inputs.values()]
            with torch.no_grad():
                out_th = th(*args_th, shifts=shifts)
            out_tf = tf_(*args_tf, shifts=shifts)
            outs = zip(out_th, out_tf) if isinstance(out_th, tuple) else [(out_th, out_tf)]
            return {("image_config/forward", f"{key}.{family_of(cfg).name}.{i}"): (a.numpy(), b.numpy())
                    for i, (a, b) in enumerate(outs)}

        assert_twins_agree(twin_report(measure))


def _torch_state(params: dict[str, np.ndarray]) -> dict:
    import torch

    return {k: torch.from_numpy(v) for k, v in params.items()}


@pytest.mark.parametrize("rel,state_rel", [(CAN[0], "pretrain/can/pre_diffusion_mlp.yaml"),
                                           (CAN[1], "pretrain/can/pre_gaussian_mlp.yaml"),
                                           (CAN[2], "finetune/can/ft_ppo_diffusion_mlp.yaml")])
def test_upstream_checkpoints_of_image_networks_import_through_the_existing_path(rel, state_rel, tmp_path) -> None:
    """An upstream state_<n>.pt of an image policy (its networks' state_dicts under upstream's prefixes, Gaussian
    clamp constants included) imports tensor by tensor against the image config's model settings (the rest of the
    config from the state-based one of the same kind, since the image configs' other sections are not read yet)."""
    import dataclasses

    import torch

    from dppo.checkpoints.upstream import import_upstream
    from shared.diffusion.eta import eta_spec
    from shared.settings import load_settings

    model = _model(rel)
    raw, state_raw = load_config(UPSTREAM / rel), load_config(UPSTREAM / state_rel)
    shared_keys = [f"{k}={raw[k]}" for k in ("obs_dim", "action_dim", "horizon_steps", "cond_steps", "denoising_steps",
                                             "ft_denoising_steps") if k in raw and k in state_raw]
    cfg = dataclasses.replace(load_settings(str(UPSTREAM / state_rel), shared_keys), model=model)
    path = tmp_path / "state_5.pt"
    if hasattr(model, "critic"):  # PPODiffusion: actor (frozen base), actor_ft, critic
        actor, critic = network_init(model.actor, 0), network_init(model.critic, 1)
        state = {**{f"actor.{k}": v for k, v in actor.items()}, **{f"actor_ft.{k}": v for k, v in actor.items()},
                 **{f"critic.{k}": v for k, v in critic.items()},
                 **{k: np.full(shape, 0.5, np.float32) for k, shape in eta_spec(cfg.dppo.eta).items()}}
        torch.save({"itr": 5, "model": _torch_state(state)}, path)
        groups = import_upstream(path, cfg).groups["model"]
        assert set(groups) == set(state) and all(np.array_equal(groups[k], v) for k, v in state.items())
        return
    net = {f"network.{k}": v for k, v in network_init(model.network, 0).items()}
    extra = {}
    if isinstance(model.network, GaussianVisionMLPConfig):  # Gaussian_VisionMLP's clamp constants
        extra = {"network.logvar_min": np.array(np.log(0.01**2), np.float32),
                 "network.logvar_max": np.zeros((), np.float32)}
    torch.save({"epoch": 5, "model": _torch_state({**net, **extra}), "ema": _torch_state(net | extra)}, path)
    groups = import_upstream(path, cfg).groups
    assert set(groups["ema"]) == set(net) and all(np.array_equal(groups["ema"][k], v) for k, v in net.items())
    broken = {**net, "network.backbone.vit.pos_embed": np.zeros((1, 120, 128), np.float32)}
    torch.save({"epoch": 5, "model": _torch_state(broken), "ema": _torch_state(broken)}, path)
    with pytest.raises(Exception, match="pos_embed"):
        import_upstream(path, cfg)


@pytest.mark.parametrize("change,message", [
    ({"backbone.img_h": 20}, r"'model\.network\.backbone\.img_h' must be 16 \+ 8 k for embed2"),
    ({"backbone.cfg.embed_style": "embed1", "backbone.img_w": 92}, r"'model\.network\.backbone\.img_w' must be a "
                                                                    r"multiple of 8 for embed1"),
    ({"backbone.cfg.num_heads": 3}, r"'model\.network\.backbone\.cfg\.num_heads' must divide embed_dim=128"),
    ({"backbone.num_channel": 6}, r"'model\.network\.backbone\.num_channel' must be 3 x img_cond_steps = 3"),
    ({"spatial_emb": 1}, r"'model\.network\.spatial_emb' must be 0 \(no SpatialEmb\) or > 1"),
    ({"num_img": 3}, r"'model\.network\.num_img' must be 1 or 2"),
    ({"spatial_emb": 0, "num_img": 2}, r"'model\.network\.spatial_emb' must be > 1 with num_img 2"),
    ({"backbone._target_": "model.common.vit.Other"}, r"'model\.network\.backbone\._target_' "
                                                       r"'model\.common\.vit\.Other' is not supported here"),
])
def test_a_bad_image_network_key_is_one_line_naming_it(change: dict, message: str) -> None:
    raw = load_config(UPSTREAM / CAN[0])
    for dotted, value in change.items():
        *path, last = dotted.split(".")
        section = raw["model"]["network"]
        for part in path:
            section = section[part]
        section[last] = value
    with pytest.raises(ConfigError, match=rf"^config key {message}[^\n]*$"):
        read(DiffusionConfig, raw["model"], "model")
