"""`dppo finetune` with upstream's SAC, RLPD, IBRL and Cal-QL configs (tests/fixtures/upstream_cfg, values
unchanged; only key=value overrides that shorten the run): every one runs, a resumed run equals an
uninterrupted one, IBRL starts from a Gaussian policy `dppo pretrain` made, Cal-QL's online phase starts from
its offline phase's checkpoint (across frameworks), and bad input gets one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dppo.cli import main
from shared.checkpoint import load_checkpoint

UPSTREAM = Path("tests/fixtures/upstream_cfg/cfg/gym")
SAC = str(UPSTREAM / "finetune/hopper-v2/sac_mlp.yaml")
SHORT = ["wandb=null", "env.max_episode_steps=20", "train.n_eval_episode=1", "train.log_freq=1"]
SMALL_NETS = ["model.actor.mlp_dims=[32,32]", "model.critic.mlp_dims=[32,32]"]
SHORT_SAC = [*SHORT, *SMALL_NETS, "train.n_explore_steps=2", "train.batch_size=4", "train.critic_replay_ratio=4",
             "train.actor_replay_ratio=2", "train.val_freq=6", "train.save_model_freq=4"]


@pytest.fixture(autouse=True)
def _logs(tmp_path, monkeypatch):
    monkeypatch.setenv("DPPO_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("DPPO_DATA_DIR", raising=False)  # default: data/, found in upstream's gym/<env>/ layout too


def _metrics(logdir: Path) -> list[dict]:
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


def _model(logdir: Path, itr: int) -> dict[str, np.ndarray]:
    return load_checkpoint(logdir / "checkpoint" / f"state_{itr}.npz").group("model")


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_upstream_sac_config_explores_evaluates_by_episodes_and_resumes_exactly(tmp_path, backend):
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(["finetune", "--config", SAC, "--backend", backend, "--quiet", *SHORT_SAC, "train.n_train_itr=8",
                 f"logdir={whole}"]) == 0
    assert main(["finetune", "--config", SAC, "--backend", backend, "--quiet", *SHORT_SAC, "train.n_train_itr=5",
                 f"logdir={split}"]) == 0
    assert main(["finetune", "--config", SAC, "--backend", backend, "--quiet", *SHORT_SAC, "train.n_train_itr=8",
                 f"logdir={split}"]) == 0
    a, b = _model(whole, 7), _model(split, 7)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    records = _metrics(whole)
    evals = [r for r in records if r["eval"]]
    # evaluation starts once exploration is over (itr > n_explore_steps = 2): itr 6, run to one ended episode
    assert [r["itr"] for r in evals] == [6] and evals[0]["num_episodes"] == 1
    trained = {r["itr"]: r for r in records if not r["eval"]}
    assert "critic_loss" not in trained[2] and "critic_loss" in trained[3]  # updates wait for exploration
    assert "actor_loss" in trained[4] and "actor_loss" not in trained[5]  # the actor every 4 / 2 = 2 iterations
    assert trained[7]["env_steps"] == 7 and trained[7]["buffer_transitions"] == 7  # one env step per iteration


def test_every_upstream_config_of_the_four_runs_on_the_shipped_data():
    """Three iterations of each (hopper and halfcheetah; Cal-QL's offline phase too), one update each."""
    names = ["finetune/hopper-v2/sac_mlp", "finetune/halfcheetah-v2/sac_mlp", "finetune/hopper-v2/rlpd_mlp",
             "finetune/halfcheetah-v2/rlpd_mlp", "finetune/hopper-v2/ibrl_mlp", "finetune/halfcheetah-v2/ibrl_mlp",
             "pretrain/hopper-medium-v2/calql_mlp_offline", "pretrain/halfcheetah-medium-v2/calql_mlp_offline",
             "finetune/hopper-v2/calql_mlp_online", "finetune/halfcheetah-v2/calql_mlp_online"]
    per_algo = {"sac": ["train.n_explore_steps=0", "train.batch_size=2", "train.critic_replay_ratio=2",
                        "train.actor_replay_ratio=1"],
                "rlpd": ["train.n_explore_steps=0", "train.critic_num_update=1", "model.n_critics=2"],
                "ibrl": ["train.critic_num_update=1", "model.n_critics=2", "train.update_freq=1"],
                "calql": ["train.num_update=1", "train.online_utd_ratio=0.05", "train.n_random_actions=2",
                          "model.cql_n_actions=2"]}
    for name in names:
        algo = Path(name).stem.split("_")[0]
        overrides = [*SHORT, *SMALL_NETS, *per_algo[algo], "train.n_train_itr=3", "train.val_freq=2",
                     "train.batch_size=4", "offline_dataset.max_n_episodes=5", "base_policy_path=null"]
        if algo == "sac":
            overrides.remove("offline_dataset.max_n_episodes=5")
        assert main(["finetune", "--config", str(UPSTREAM / f"{name}.yaml"), "--backend", "torch", "--quiet",
                     *overrides]) == 0, name


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_ibrl_starts_from_a_pretrained_gaussian_policy_and_keeps_it_frozen(tmp_path, backend):
    pre = str(UPSTREAM / "pretrain/hopper-medium-v2/pre_gaussian_mlp.yaml")
    assert main(["pretrain", "--config", pre, "--backend", "torch", "--quiet", "train.n_epochs=1",
                 "train.max_n_episodes=4", "wandb=null", f"logdir={tmp_path / 'pre'}"]) == 0
    policy = load_checkpoint(tmp_path / "pre" / "checkpoint" / "state_1.npz").group("ema")
    ibrl = str(UPSTREAM / "finetune/hopper-v2/ibrl_mlp.yaml")
    assert main(["finetune", "--config", ibrl, "--backend", backend, "--quiet", *SHORT, "model.critic.mlp_dims=[32]",
                 "model.n_critics=3", "train.critic_num_update=2", "train.batch_size=8", "train.n_train_itr=6",
                 "train.val_freq=4", "train.save_model_freq=5", "offline_dataset.max_n_episodes=5",
                 f"base_policy_path={tmp_path / 'pre' / 'checkpoint' / 'state_1.npz'}",
                 f"logdir={tmp_path / 'ft'}"]) == 0
    model = _model(tmp_path / "ft", 5)
    for k, v in policy.items():  # network.*: the proposer stays the pre-trained policy, the actor moves
        assert np.array_equal(model[k.replace("network.", "bc_policy.", 1)], v)
    assert any(not np.array_equal(model[k], v) for k, v in policy.items())
    assert any(r.get("actor_loss") is not None for r in _metrics(tmp_path / "ft"))


def test_calql_online_phase_starts_from_the_offline_checkpoint_of_the_other_framework(tmp_path):
    offline = str(UPSTREAM / "pretrain/hopper-medium-v2/calql_mlp_offline.yaml")
    online = str(UPSTREAM / "finetune/hopper-v2/calql_mlp_online.yaml")
    common = [*SHORT, *SMALL_NETS, "train.batch_size=8", "train.n_random_actions=2", "model.cql_n_actions=2",
              "offline_dataset.max_n_episodes=5"]
    assert main(["finetune", "--config", offline, "--backend", "tf", "--quiet", *common, "train.n_train_itr=3",
                 "train.num_update=4", "train.val_freq=5", f"logdir={tmp_path / 'off'}"]) == 0
    start = _model(tmp_path / "off", 2)
    assert main(["finetune", "--config", online, "--backend", "torch", "--quiet", *common, "train.n_train_itr=3",
                 "train.val_freq=2", "train.online_utd_ratio=0.2", "train.save_model_freq=1",
                 f"base_policy_path={tmp_path / 'off' / 'checkpoint' / 'state_2.npz'}",
                 f"logdir={tmp_path / 'on'}"]) == 0
    records = {r["itr"]: r for r in _metrics(tmp_path / "on")}
    # iteration 0 evaluates; iteration 1 collects one whole episode and takes 0.2 updates per step collected
    assert records[0]["eval"] and not records[1]["eval"] and records[1]["num_episodes"] == 1
    assert records[1]["buffer_transitions"] == records[1]["env_steps"] > 0
    first = load_checkpoint(tmp_path / "on" / "checkpoint" / "state_0.npz").group("model")
    assert all(np.array_equal(first[k], start[k]) for k in start if k != "log_alpha")  # no update in an eval iteration
    assert first["log_alpha"] == 0.0  # the temperature restarts at init_temperature = 1, as upstream


def test_a_sac_checkpoint_evaluates_with_its_config(tmp_path, capsys):
    assert main(["finetune", "--config", SAC, "--backend", "tf", "--quiet", *SHORT_SAC, "train.n_train_itr=5",
                 f"logdir={tmp_path / 'run'}"]) == 0
    ckpt = tmp_path / "run" / "checkpoint" / "state_4.npz"
    assert main(["eval", "--config", SAC, "--backend", "torch", "--episodes", "2", f"base_policy_path={ckpt}",
                 "env.max_episode_steps=20", *SMALL_NETS]) == 0
    assert "return" in capsys.readouterr().out


@pytest.mark.parametrize("config, overrides, message", [
    ("finetune/hopper-v2/rlpd_mlp.yaml", ["offline_dataset=null"], "needs an 'offline_dataset' section"),
    ("finetune/hopper-v2/calql_mlp_online.yaml", ["env.n_envs=2"], "online Cal-QL collects whole episodes of one"),
    ("finetune/hopper-v2/rlpd_mlp.yaml", ["offline_dataset.dataset_path=/nowhere/train.npz"],
     "offline dataset not found: /nowhere/train.npz"),
    ("finetune/hopper-v2/sac_mlp.yaml", ["train.critic_replay_ratio=512"], "train.critic_replay_ratio=512"),
    ("finetune/hopper-v2/ibrl_mlp.yaml", ["base_policy_path=data/checkpoints/hopper_pretrain_diffusion_mlp_e40.npz"],
     "holds a diffusion policy, not a Gaussian policy: IBRL starts from a Gaussian"),
])
def test_bad_input_to_the_gaussian_off_policy_fine_tuners_gets_one_line(config, overrides, message, capsys, tmp_path):
    assert main(["finetune", "--config", str(UPSTREAM / config), "--backend", "torch", "--quiet", *overrides,
                 "train.n_train_itr=1", f"logdir={tmp_path / 'run'}", "wandb=null"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


# sizes only (upstream's 10-critic ensemble updated 20 times an iteration, 10 CQL actions): the same code paths
@pytest.mark.parametrize("config, sizes", [
    ("finetune/hopper-v2/rlpd_mlp.yaml", ["model.n_critics=3", "train.critic_num_update=2"]),
    ("pretrain/hopper-medium-v2/calql_mlp_offline.yaml", ["train.n_random_actions=2", "model.cql_n_actions=2"])])
def test_dppo_parity_compares_whole_agents_of_the_gaussian_baselines(config, sizes, tmp_path, capsys):
    """Acting and two iterations of updates, end to end and teacher-forced (every algorithm of the four shares
    this section: dppo/algorithms/gaussian_replay.py)."""
    out = tmp_path / "parity.json"
    assert main(["parity", "--config", str(UPSTREAM / config), "--batch", "6", "--json", str(out),
                 *SMALL_NETS, *sizes]) == 0
    report = json.loads(out.read_text())
    sections = {row["section"] for row in report["rows"]}
    algorithm = "rlpd" if "rlpd" in config else "calql"
    assert {f"{algorithm}/act", f"{algorithm}/update", f"{algorithm}/forced/update"} <= sections
    assert "parity OK" in capsys.readouterr().out


def test_the_gaussian_baselines_join_dppo_compare_beside_dppo(tmp_path):
    """DPPO (the shipped config), SAC and RLPD on one hopper budget: a table row each, wall time counted over
    every iteration though log_freq leaves some out of the metrics."""
    out = tmp_path / "cmp"
    sac, rlpd = str(UPSTREAM / "finetune/hopper-v2/sac_mlp.yaml"), str(UPSTREAM / "finetune/hopper-v2/rlpd_mlp.yaml")
    assert main(["compare", "--config", "configs/hopper/finetune_ppo_diffusion_mlp.yaml", "--config", sac,
                 "--config", rlpd, "--backend", "torch", "--out", str(out), "--quiet", "--eval-episodes", "1",
                 "train.n_train_itr=4", "train.val_freq=3", "env.max_episode_steps=20",
                 "finetune_ppo_diffusion_mlp:env.n_envs=2", "finetune_ppo_diffusion_mlp:train.n_steps=3",
                 "finetune_ppo_diffusion_mlp:train.batch_size=6", "finetune_ppo_diffusion_mlp:denoising_steps=4",
                 "finetune_ppo_diffusion_mlp:ft_denoising_steps=2",
                 "finetune_ppo_diffusion_mlp:model.actor.mlp_dims=[16,16,16]",
                 "finetune_ppo_diffusion_mlp:model.critic.mlp_dims=[16,16,16]",
                 *(f"{n}:{o}" for n in ("sac_mlp", "rlpd_mlp")
                   for o in [*SMALL_NETS, "train.n_explore_steps=1", "train.batch_size=4", "train.n_eval_episode=1",
                             "wandb=null"]),
                 "sac_mlp:train.critic_replay_ratio=4", "sac_mlp:train.actor_replay_ratio=2",
                 "rlpd_mlp:train.critic_num_update=2", "rlpd_mlp:model.n_critics=2",
                 "rlpd_mlp:offline_dataset.max_n_episodes=5"]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {(r["algorithm"], r["backend"]) for r in rows} == {(a, "torch") for a in ("DPPO", "SAC", "RLPD")}
    for r in rows:
        assert r["wall_time_s"] > 0 and r["env_steps"] > 0, r
