"""Importing upstream irom-lab/dppo checkpoints (built here in upstream's layout and names)."""

from collections import OrderedDict

import numpy as np
import pytest
import tensorflow as tf
import torch

import core_tf.runtime.canonical as tf_io
import core_torch.runtime.canonical as torch_io
from core_tf.algorithms.ppo_diffusion import PPODiffusionModel as TFPpoModel
from core_torch.algorithms.ppo_diffusion import PPODiffusionModel as TorchPPO
from core_torch.diffusion.model import DiffusionModel
from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.config.loading import load_config
from shared.param_spec import critic_obs_spec, diffusion_mlp_spec, torch_default_init
from shared.settings import load_settings, read_config

PRE = "configs/hopper/pretrain_diffusion_mlp.yaml"
FT = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
SMALL_PRE = ["model.network.mlp_dims=[32,32,32]"]
SMALL_FT = ["model.actor.mlp_dims=[32,32,32]", "model.critic.mlp_dims=[16,16,16]"]


def _tensors(params):
    return OrderedDict((k, torch.from_numpy(v)) for k, v in params.items())


def _write_config(tmp_path, path, overrides):
    import yaml

    out = tmp_path / "cfg.yaml"
    out.write_text(yaml.safe_dump(load_config(path, overrides)))
    return str(out)


def test_upstream_pretrain_state_imports_with_ema_and_matches_outputs(tmp_path):
    dc = read_config(load_config(PRE, SMALL_PRE)).model
    spec = diffusion_mlp_spec(dc.network, "network.")
    model, ema = torch_default_init(spec, 1), torch_default_init(spec, 2)
    torch.save({"epoch": 3000, "model": _tensors(model), "ema": _tensors(ema)}, tmp_path / "state_3000.pt")
    cfg_path = _write_config(tmp_path, PRE, SMALL_PRE)
    assert main(["convert", "--from-upstream", str(tmp_path / "state_3000.pt"), "--config", cfg_path,
                 "--out", str(tmp_path / "c.npz")]) == 0
    ckpt = load_checkpoint(tmp_path / "c.npz")
    assert ckpt.meta["epoch"] == 3000 and ckpt.meta["kind"] == "pretrain"
    for name in spec:
        np.testing.assert_array_equal(ckpt.group("ema")[name], ema[name])
        np.testing.assert_array_equal(ckpt.group("model")[name], model[name])
    # upstream's own loading path: load_state_dict on the same module names
    reference = DiffusionModel(dc)
    reference.load_state_dict(_tensors(ema), strict=False)
    ours = DiffusionModel(dc)
    torch_io.load_state(ours, ckpt.group("ema"))
    state = torch.zeros(3, 1, 11)
    noise = torch.randn(21, 3, 4, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours.sample(state, noise).trajectories, reference.sample(state, noise).trajectories,
                               rtol=0, atol=0)


def _upstream_ppo_state(cfg):
    dc, critic = cfg.diffusion, cfg.critic
    base = torch_default_init(diffusion_mlp_spec(dc.network), 3)
    ft = torch_default_init(diffusion_mlp_spec(dc.network), 4)
    crit = torch_default_init(critic_obs_spec(critic), 5)
    state = OrderedDict()
    for prefix, params in (("network.", base), ("actor.", base), ("actor_ft.", ft), ("critic.", crit)):
        state.update((prefix + k, torch.from_numpy(v)) for k, v in params.items())
    return state


def test_upstream_finetune_state_imports_and_runs_in_both_frameworks(tmp_path):
    cfg = load_settings(FT, SMALL_FT)
    torch.save({"itr": 500, "model": _upstream_ppo_state(cfg)}, tmp_path / "state_500.pt")
    cfg_path = _write_config(tmp_path, FT, SMALL_FT)
    assert main(["convert", "--from-upstream", str(tmp_path / "state_500.pt"), "--config", cfg_path,
                 "--out", str(tmp_path / "ft.npz")]) == 0
    group = load_checkpoint(tmp_path / "ft.npz").group("model")
    assert not any(k.startswith("network.") for k in group)
    dc, critic, d = cfg.diffusion, cfg.critic, cfg.dppo
    th, tf_ = TorchPPO(dc, critic, d), TFPpoModel(dc, critic, d)
    torch_io.load_state(th, group)
    tf_io.load_state(tf_, group)
    state = np.zeros((2, 1, 11), np.float32)
    noise = np.random.default_rng(0).standard_normal((21, 2, 4, 3)).astype(np.float32)
    a, _ = th.sample(torch.from_numpy(state), torch.from_numpy(noise), True)
    b, _ = tf_.sample(tf.constant(state), tf.constant(noise), True)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    # fine-tune further in either framework, starting from the imported actor_ft
    for backend in ("torch", "tf"):
        assert main(["finetune", "--config", cfg_path, "--backend", backend, "--quiet",
                     f"base_policy_path={tmp_path / 'ft.npz'}", f"logdir={tmp_path / backend}",
                     "normalization_path=data/hopper-medium-v2/normalization.npz", "train.n_train_itr=1",
                     "train.n_steps=3", "env.n_envs=2", "train.batch_size=6", "env.max_episode_steps=20",
                     "env.wrappers.multi_step.max_episode_steps=20"]) == 0


@pytest.mark.parametrize("break_it, message", [
    (lambda s: s.pop("actor_ft.mlp_mean.layers.0.bias"), "missing tensor 'actor_ft.mlp_mean.layers.0.bias'"),
    (lambda s: s.__setitem__("critic.extra.weight", torch.zeros(1)), "unexpected tensor 'critic.extra.weight'"),
    (lambda s: s.__setitem__("actor.time_embedding.1.weight", torch.zeros(5, 5)),
     "'actor.time_embedding.1.weight' has shape [5, 5]"),
])
def test_mismatched_upstream_architecture_is_one_message_naming_the_tensor(tmp_path, capsys, break_it, message):
    cfg = load_settings(FT, SMALL_FT)
    state = _upstream_ppo_state(cfg)
    state.pop("network.time_embedding.1.weight")  # so only actor.* defines the base policy's tensor below
    break_it(state)
    torch.save({"itr": 1, "model": state}, tmp_path / "s.pt")
    cfg_path = _write_config(tmp_path, FT, SMALL_FT)
    code = main(["convert", "--from-upstream", str(tmp_path / "s.pt"), "--config", cfg_path,
                 "--out", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "o.npz").exists()


def test_upstream_ddim_state_with_eta_imports(tmp_path):
    """Upstream DDIM fine-tuning checkpoints carry eta.* (model.eta); the importer keeps them."""
    from shared.diffusion.eta import eta_init

    over = [*SMALL_FT, "model.use_ddim=true", "model.ddim_steps=5", "ft_denoising_steps=5",
            "model.eta={_target_: model.diffusion.eta.EtaFixed, base_eta: 1, min_eta: 0.1, max_eta: 1.0}"]
    cfg = load_settings(FT, over)
    state = _upstream_ppo_state(cfg)
    state.update(_tensors(eta_init(cfg.dppo.eta, 0)))
    torch.save({"itr": 7, "model": state}, tmp_path / "state_7.pt")
    cfg_path = _write_config(tmp_path, FT, over)
    assert main(["convert", "--from-upstream", str(tmp_path / "state_7.pt"), "--config", cfg_path,
                 "--out", str(tmp_path / "ft.npz")]) == 0
    group = load_checkpoint(tmp_path / "ft.npz").group("model")
    assert np.isinf(group["eta.eta_logit"]).all()  # base_eta = max_eta: upstream's logit is atanh(1)
    dc, critic, d = cfg.diffusion, cfg.critic, cfg.dppo
    th = TorchPPO(dc, critic, d)
    torch_io.load_state(th, group)
    th.check_fixed_eta()
    assert float(th.eta_values(torch.zeros(1, 1, 11))[0, 0]) == 1.0


GAUSSIAN = "configs/hopper/ppo_gaussian_mlp.yaml"
SMALL_GAUSSIAN = ["model.actor.mlp_dims=[16,16]", "model.critic.mlp_dims=[16,16,16]"]


def test_upstream_gaussian_ppo_state_imports_evaluates_and_finetunes(tmp_path):
    """PPO_Gaussian's state_dict: network.* and actor_ft.* (the trained policy, one module), actor.* (its
    frozen starting copy), critic.*; the policy becomes our actor.*."""
    from shared.param_spec import gaussian_mlp_spec

    cfg = load_settings(GAUSSIAN, SMALL_GAUSSIAN)
    trained = torch_default_init(gaussian_mlp_spec(cfg.gaussian_actor), 1)
    start = torch_default_init(gaussian_mlp_spec(cfg.gaussian_actor), 2)
    critic = torch_default_init(critic_obs_spec(cfg.critic), 3)
    state = OrderedDict()
    for prefix, params in (("network.", trained), ("actor_ft.", trained), ("actor.", start), ("critic.", critic)):
        state.update((prefix + k, torch.from_numpy(v)) for k, v in params.items())
    state["network.logvar_min"] = state["actor_ft.logvar_min"] = torch.tensor([-10.0])  # constants, dropped
    torch.save({"itr": 250, "model": state}, tmp_path / "state_250.pt")
    cfg_path = _write_config(tmp_path, GAUSSIAN, SMALL_GAUSSIAN)
    assert main(["convert", "--from-upstream", str(tmp_path / "state_250.pt"), "--config", cfg_path,
                 "--out", str(tmp_path / "g.npz")]) == 0
    group = load_checkpoint(tmp_path / "g.npz").group("model")
    assert sorted(group) == sorted([f"actor.{k}" for k in trained] + [f"critic.{k}" for k in critic])
    for k, v in trained.items():
        np.testing.assert_array_equal(group[f"actor.{k}"], v)
    short = ["train.n_train_itr=1", "train.n_steps=3", "env.n_envs=2", "train.batch_size=6", "train.val_freq=5",
             "train.force_train=true", "env.max_episode_steps=20", "env.wrappers.multi_step.max_episode_steps=20"]
    for backend in ("torch", "tf"):  # the upstream .pt itself works as base_policy_path too
        assert main(["finetune", "--config", cfg_path, "--backend", backend, "--quiet", *short,
                     f"base_policy_path={tmp_path / 'state_250.pt'}", f"logdir={tmp_path / backend}"]) == 0
        assert main(["eval", "--config", cfg_path, "--backend", backend, "--episodes", "2",
                     f"base_policy_path={tmp_path / 'g.npz'}", "env.max_episode_steps=20",
                     "env.wrappers.multi_step.max_episode_steps=20"]) == 0


def test_an_upstream_state_broken_apart_names_the_tensor(tmp_path, capsys):
    cfg = load_settings(GAUSSIAN, SMALL_GAUSSIAN)
    from shared.param_spec import gaussian_mlp_spec

    trained = torch_default_init(gaussian_mlp_spec(cfg.gaussian_actor), 1)
    state = OrderedDict(("actor_ft." + k, torch.from_numpy(v)) for k, v in trained.items())
    state.update(("network." + k, torch.from_numpy(v + 1)) for k, v in trained.items())  # not the same tensors
    torch.save({"itr": 1, "model": state}, tmp_path / "s.pt")
    code = main(["convert", "--from-upstream", str(tmp_path / "s.pt"), "--config", GAUSSIAN, *SMALL_GAUSSIAN,
                 "--out", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "differ" in err and err.count("\n") == 1 and not (tmp_path / "o.npz").exists()
