"""GMM policies end to end on the shipped Hopper data, both backends: `dppo pretrain` of configs/hopper/pre_gmm_mlp.yaml
(upstream's pre_gmm_mlp keys), then `dppo finetune` of configs/hopper/ft_ppo_gmm_mlp.yaml (PPO_GMM) from that
checkpoint, from the other framework's checkpoint, from an upstream-layout state_<n>.pt, and resumed; bad GMM values
get one line. Upstream's robomimic GMM configs read as GMM configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from dppo.algorithms.ppo_gmm import initial_params
from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.settings import GMMPretrainConfig, finetune_algorithm, load_settings
from shared.settings.gmm import GMMFinetuneConfig

PRE = "configs/hopper/pre_gmm_mlp.yaml"
FT = "configs/hopper/ft_ppo_gmm_mlp.yaml"
SMALL_PRE = ["model.network.mlp_dims=[32,32,32]", "train.max_n_episodes=12", "train.n_epochs=3",
             "train.save_model_freq=3", "train.lr_scheduler.first_cycle_steps=4", "train.lr_scheduler.warmup_steps=1",
             "train.epoch_start_ema=1", "train.update_ema_freq=1"]
SMALL_FT = ["model.actor.mlp_dims=[32,32,32]", "model.critic.mlp_dims=[16,16,16]", "env.n_envs=2", "train.n_steps=16",
            "train.n_train_itr=4", "train.batch_size=16", "train.update_epochs=2", "train.val_freq=2",
            "train.save_model_freq=2", "env.max_episode_steps=40", "train.n_critic_warmup_itr=1"]
ROBOMIMIC = Path("tests/fixtures/upstream_cfg/cfg/robomimic")


def _records(logdir: Path) -> list[dict]:
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """Both backends pre-train the same GMM policy; returns the runs' parent (torch/, tf/)."""
    root = tmp_path_factory.mktemp("gmm_pre")
    for backend in ("torch", "tf"):
        assert main(["pretrain", "--config", PRE, "--backend", backend, "--quiet", f"logdir={root / backend}",
                     *SMALL_PRE]) == 0
    return root


def test_gmm_pretraining_runs_in_both_frameworks_with_the_same_losses(pretrained):
    torch_run, tf_run = _records(pretrained / "torch"), _records(pretrained / "tf")
    assert [r["epoch"] for r in torch_run] == [1, 2, 3] and {"loss", "entropy", "lr"} <= set(torch_run[0])
    np.testing.assert_allclose([r["loss"] for r in tf_run], [r["loss"] for r in torch_run], rtol=1e-4)
    assert torch_run[-1]["loss"] < torch_run[0]["loss"]
    ckpt = load_checkpoint(pretrained / "torch" / "checkpoint" / "state_3.npz")
    assert {"model", "ema", "optimizer"} <= set(ckpt.groups)
    assert {k for k in ckpt.group("model")} >= {"network.mlp_weights.layers.0.weight", "network.mlp_mean.layers.0.bias"}


def test_a_torch_gmm_pretraining_checkpoint_resumes_in_tf(pretrained, tmp_path):
    assert main(["pretrain", "--config", PRE, "--backend", "tf", "--quiet", f"logdir={tmp_path}", *SMALL_PRE,
                 "train.n_epochs=4", "train.save_model_freq=4",
                 f"resume={pretrained / 'torch' / 'checkpoint' / 'state_3.npz'}"]) == 0
    assert [r["epoch"] for r in _records(tmp_path)] == [4]


def _finetune(backend: str, logdir: Path, base: Path | str, *extra: str) -> list[dict]:
    assert main(["finetune", "--config", FT, "--backend", backend, "--quiet", f"logdir={logdir}",
                 f"base_policy_path={base}", *SMALL_FT, *extra]) == 0
    return _records(logdir)


def test_ppo_gmm_finetunes_from_the_pretrained_policy_in_both_frameworks_alike(pretrained, tmp_path, capsys):
    base = pretrained / "torch" / "checkpoint" / "state_3.npz"
    runs = {b: _finetune(b, tmp_path / b, base) for b in ("torch", "tf")}
    train = [r for r in runs["torch"] if not r["eval"]]
    assert train and {"pg_loss", "v_loss", "entropy_loss", "std", "approx_kl", "clipfrac"} <= set(train[0])
    for key in ("avg_episode_reward", "v_loss", "std"):
        ours = [r.get(key) for r in runs["torch"] if r.get(key) is not None]
        theirs = [r.get(key) for r in runs["tf"] if r.get(key) is not None]
        np.testing.assert_allclose(theirs, ours, rtol=1e-3, err_msg=key)
    ckpt = load_checkpoint(tmp_path / "torch" / "checkpoint" / "state_3.npz")
    assert ckpt.meta["algorithm"] == "ppo_gmm" and "actor.logvar" in ckpt.group("model")
    # a PPO_GMM checkpoint as the base policy of another run: its actor and critic, in the other framework
    cfg = load_settings(FT, [f"base_policy_path={tmp_path / 'torch' / 'checkpoint' / 'state_3.npz'}", *SMALL_FT])
    init = initial_params(cfg)
    for k, v in ckpt.group("model").items():
        np.testing.assert_array_equal(init[k], v)
    _finetune("tf", tmp_path / "from_ft", tmp_path / "torch" / "checkpoint" / "state_3.npz", "train.n_train_itr=2")
    # and `dppo eval` of the fine-tuned policy (deterministic acting) in both frameworks
    returns = []
    for backend in ("torch", "tf"):
        assert main(["eval", "--config", FT, "--backend", backend, "--episodes", "2", *SMALL_FT,
                     f"base_policy_path={tmp_path / 'torch' / 'checkpoint' / 'state_3.npz'}"]) == 0
        returns.append(capsys.readouterr().out)
    means = [float(out.split("return ")[1].split()[0]) for out in returns]  # "<backend>: return M +- S over ..."
    assert abs(means[0] - means[1]) <= 0.1 + 1e-9  # printed to one decimal


def test_the_pretrained_ema_is_not_what_ppo_gmm_starts_from_but_the_model_is(pretrained):
    """Upstream's GMMModel loads checkpoint['model'] (not the EMA); a learned fixed std the pre-training fixed starts
    at log(fixed_std^2)."""
    path = pretrained / "tf" / "checkpoint" / "state_3.npz"
    ckpt = load_checkpoint(path)
    init = initial_params(load_settings(FT, [f"base_policy_path={path}", *SMALL_FT]))
    for k, v in ckpt.group("model").items():
        np.testing.assert_array_equal(init["actor." + k[len("network."):]], v)
    assert any(not np.array_equal(ckpt.group("ema")[k], v) for k, v in ckpt.group("model").items())
    np.testing.assert_allclose(init["actor.logvar"], np.log(0.1**2), rtol=1e-6)


def test_an_upstream_gmm_pretraining_state_pt_is_a_base_policy(pretrained, tmp_path):
    import torch

    ckpt = load_checkpoint(pretrained / "torch" / "checkpoint" / "state_3.npz")
    group = {k: torch.from_numpy(np.asarray(v)) for k, v in ckpt.group("model").items()}
    group["network.logvar_min"], group["network.logvar_max"] = torch.tensor(-9.2), torch.tensor(0.0)  # constants
    path = tmp_path / "state_3.pt"
    torch.save({"epoch": 3, "model": group, "ema": dict(group)}, path)
    ours = initial_params(load_settings(FT, [f"base_policy_path={pretrained / 'torch/checkpoint/state_3.npz'}",
                                             *SMALL_FT]))
    theirs = initial_params(load_settings(FT, [f"base_policy_path={path}", *SMALL_FT]))
    assert set(ours) == set(theirs)
    for k in ours:
        np.testing.assert_array_equal(ours[k], theirs[k])


def test_an_upstream_ppo_gmm_state_pt_imports_as_actor_and_critic(tmp_path):
    """Upstream's PPO_GMM state: network.* and actor_ft.* (one module), critic.*, the clamp constants."""
    import torch

    fresh = initial_params(load_settings(FT, ["base_policy_path=null", *SMALL_FT]))
    state = {}
    for k, v in fresh.items():
        if k.startswith("actor."):
            for prefix in ("network.", "actor_ft."):
                state[prefix + k[len("actor."):]] = torch.from_numpy(np.asarray(v))
        else:
            state[k] = torch.from_numpy(np.asarray(v))
    state["network.logvar_min"] = state["actor_ft.logvar_min"] = torch.tensor(-9.2)
    path = tmp_path / "state_5.pt"
    torch.save({"itr": 5, "model": state}, path)
    imported = initial_params(load_settings(FT, [f"base_policy_path={path}", "seed=7", *SMALL_FT]))
    assert set(imported) == set(fresh)
    for k in fresh:
        np.testing.assert_array_equal(imported[k], fresh[k])


def test_upstream_robomimic_gmm_configs_read_as_gmm_configs():
    for task in ("can", "lift", "square", "transport"):
        cfg = load_settings(str(ROBOMIMIC / "pretrain" / task / "pre_gmm_mlp.yaml"))
        assert isinstance(cfg, GMMPretrainConfig) and cfg.model.network.num_modes == 5
        from shared.config.loading import load_config

        raw = load_config(ROBOMIMIC / "finetune" / task / "ft_ppo_gmm_mlp.yaml")
        assert finetune_algorithm(raw) == "ppo_gmm"  # the Gaussian PPO agent, told apart by model._target_
        gaussian = load_config(ROBOMIMIC / "finetune" / task / "ft_ppo_gaussian_mlp.yaml")
        assert finetune_algorithm(gaussian) == "ppo"
    assert isinstance(load_settings(FT), GMMFinetuneConfig)


@pytest.mark.parametrize(("config", "override", "expected"), [
    (PRE, "train.ent_coef=0.1", "train.ent_coef' is not used for a GMM policy"),
    (PRE, "model.network.num_modes=3", "num_modes'=5 disagrees with 'model.network.num_modes'=3"),
    (PRE, "model.network.learn_fixed_std=true", None),  # valid: a learned fixed std from fixed_std
    (PRE, "model.network.fixed_std=null", None),  # valid: a learned std head
    (PRE, "model.network.std_max=0.001", "model.network.std_max' must be >= std_min"),
    (PRE, "model.network.mlp_dims=[32,16,32]", "model.network.mlp_dims' must be an odd number of equal widths"),
    (FT, "train.use_bc_loss=true", "PPO_GMM has no BC term"),
    (FT, "model.actor.num_modes=0", "model.actor.num_modes' must be a positive integer"),
    (FT, "model.actor._target_=model.common.mlp_gaussian.Gaussian_MLP", "model.actor._target_'"),
])
def test_bad_gmm_values_are_refused_in_one_line(tmp_path, capsys, config, override, expected):
    args = ["--backend", "torch", "--quiet", f"logdir={tmp_path}"]
    if config == PRE:
        argv = ["pretrain", "--config", config, *args, *SMALL_PRE, "train.n_epochs=1", override]
    else:
        argv = ["finetune", "--config", config, *args, *SMALL_FT, "base_policy_path=null", "train.n_train_itr=1",
                override]
    if expected is None:
        load_settings(config, [override])  # reads
        return
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "Traceback" not in err[0], err
    assert expected in err[0], err[0]


def test_parity_refuses_gmm_pretraining_and_export_serves_it(pretrained, tmp_path, capsys):
    assert main(["parity", "--config", PRE]) == 2
    assert "does not run GMM pre-training configs" in capsys.readouterr().err
    ckpt = pretrained / "torch" / "checkpoint" / "state_3.npz"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "exported"), "--no-xla",
                 "--normalization", "data/hopper-medium-v2/normalization.npz"]) == 0  # the config names none
    inputs = tf.saved_model.load(str(tmp_path / "exported" / "1")).signatures["sample"].structured_input_signature[1]
    assert sorted(inputs) == ["mode_uniform", "noise", "state"]  # tests/cli/test_export_families.py: the values


def test_dppo_parity_runs_a_ppo_gmm_config(capsys):
    assert main(["parity", "--config", FT, "base_policy_path=null", *SMALL_FT, "num_modes=2", "horizon_steps=2",
                 "act_steps=2"]) == 0
    out = capsys.readouterr().out
    assert "ppo/update" in out and "ppo/act" in out
