"""The main job end to end on the shipped data, shrunk to seconds."""

import json

from dppo.cli import main

TINY = """
pretrain_config: configs/hopper/pretrain_diffusion_mlp.yaml
finetune_config: configs/hopper/finetune_ppo_diffusion_mlp.yaml
data_dir: data/hopper-medium-v2
eval_episodes: 2
pretrain_overrides: [train.n_epochs=1, train.lr_scheduler.first_cycle_steps=2, train.save_model_freq=1,
                     train.max_n_episodes=4, "model.network.mlp_dims=[16,16,16]", train.epoch_start_ema=1,
                     train.update_ema_freq=1, denoising_steps=5]
finetune_overrides: [train.n_train_itr=2, train.n_steps=5, env.n_envs=2, train.batch_size=5, train.update_epochs=1,
                     train.val_freq=100, train.save_model_freq=2, env.max_episode_steps=40,
                     "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]", denoising_steps=5,
                     ft_denoising_steps=3]
"""


def test_main_job_pretrains_evaluates_finetunes_and_plots_on_both_backends(tmp_path, capsys):
    job = tmp_path / "job.yaml"
    job.write_text(TINY)
    assert main(["main", "--config", str(job), "--backend", "both", "--workdir", str(tmp_path / "w"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "pre-trained" in out and "fine-tuned" in out
    assert (tmp_path / "w" / "reward_curve.png").stat().st_size > 1000
    results = json.loads((tmp_path / "w" / "results.json").read_text())
    assert [r["backend"] for r in results] == ["torch", "tf"]
    assert all(r["before"]["episodes"] == 2 and r["after"]["return_mean"] > 0 for r in results)
    assert all(r["saved_model_rel_diff"] <= 1e-5 for r in results)
    assert all((tmp_path / "w" / r["backend"] / "saved_model" / "1" / "saved_model.pb").is_file() for r in results)


def test_main_job_without_the_data_is_one_message(tmp_path, capsys):
    job = tmp_path / "job.yaml"
    job.write_text(TINY.replace("data/hopper-medium-v2", str(tmp_path / "nowhere")))
    assert main(["main", "--config", str(job), "--workdir", str(tmp_path / "w")]) == 2
    assert "shipped dataset file" in capsys.readouterr().err
