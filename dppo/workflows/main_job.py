"""The main job: pre-train on the shipped data, evaluate, fine-tune with DPPO, evaluate again;
print a before/after table and save a PNG of the reward curve, for one or both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dppo.interop.export import check_saved_model, export_saved_model
from dppo.runs.files import RunDir, writing
from dppo.runs.lock import LogdirLock
from dppo.training.evaluate import evaluate
from dppo.training.finetune import run_finetune
from dppo.training.pretrain import run_pretrain
from shared.config.loading import load_config
from shared.errors import ConfigError, DatasetError, UserError
from shared.settings import FinetuneConfig, PretrainConfig, load_settings
from shared.tolerances import SERVING_RTOL


def _pretrain_config(job: dict[str, Any], backend: str, workdir: Path) -> PretrainConfig:
    data = Path(job["data_dir"])
    return load_settings(job["pretrain_config"], [f"train_dataset_path={data / 'train.npz'}",
                                                  f"logdir={workdir / backend / 'pretrain'}",
                                                  *job["pretrain_overrides"]], ("pretrain",))


def _finetune_config(job: dict[str, Any], backend: str, workdir: Path, policy: str) -> FinetuneConfig:
    data = Path(job["data_dir"])
    return load_settings(job["finetune_config"], [f"base_policy_path={policy}",
                                                  f"logdir={workdir / backend / 'finetune'}",
                                                  f"normalization_path={data / 'normalization.npz'}",
                                                  *job["finetune_overrides"]], ("finetune",))


def check_job(job: Any, job_path: str, workdir: Path) -> None:
    """The job file and both configs it names (with their overrides), read before any work starts."""
    if not isinstance(job, dict):
        raise ConfigError(f"{job_path} must be a mapping")
    for key in ("pretrain_config", "finetune_config", "data_dir", "pretrain_overrides", "finetune_overrides"):
        if key not in job:
            raise ConfigError(f"missing required config key '{key}' in {job_path}")
    for key in ("pretrain_config", "finetune_config", "data_dir"):
        if not isinstance(job[key], str):
            raise ConfigError(f"config key '{key}' in {job_path} must be a path, got {job[key]!r}")
    for key in ("pretrain_overrides", "finetune_overrides"):
        if not isinstance(job[key], list) or not all(isinstance(o, str) for o in job[key]):
            raise ConfigError(f"config key '{key}' in {job_path} must be a list of key=value strings")
    episodes = job.get("eval_episodes", 10)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"config key 'eval_episodes' in {job_path} must be a positive integer, got {episodes!r}")
    pre = _pretrain_config(job, "torch", workdir)
    _finetune_config(job, "torch", workdir, str(Path(pre.logdir) / "checkpoint" / "state_1.npz"))


def run_backend(job: dict[str, Any], backend: str, workdir: Path, quiet: bool) -> dict[str, Any]:
    data = Path(job["data_dir"])
    for name in ("train.npz", "normalization.npz"):
        if not (data / name).is_file():
            raise DatasetError(f"shipped dataset file {data / name} is missing (see data/README.md to remake it)")
    pre_cfg = _pretrain_config(job, backend, workdir)
    print(f"[{backend}] pre-training on {data / 'train.npz'}")
    base = run_pretrain(pre_cfg, backend, quiet)["checkpoint"]

    def ft_config(policy: str) -> FinetuneConfig:
        return _finetune_config(job, backend, workdir, policy)

    ft_dir = workdir / backend / "finetune"
    n = job.get("eval_episodes", 10)
    print(f"[{backend}] evaluating the pre-trained policy over {n} episodes")
    before = evaluate(ft_config(base), backend, n)
    print(f"[{backend}] fine-tuning with DPPO")
    tuned = run_finetune(ft_config(base), backend, quiet)["checkpoint"]
    print(f"[{backend}] evaluating the fine-tuned policy over {n} episodes")
    after = evaluate(ft_config(tuned), backend, n)
    target = export_saved_model(tuned, str(workdir / backend / "saved_model"))
    diff = check_saved_model(target, tuned)
    if diff > SERVING_RTOL:
        raise UserError(f"the exported SavedModel {target} differs from the in-memory model (rel {diff:.2e})")
    print(f"[{backend}] exported {target}; serving_default matches the in-memory model (rel diff {diff:.1e})")
    return {"backend": backend, "before": before, "after": after, "curve": RunDir(ft_dir).read_metrics(),
            "pretrained": base, "finetuned": tuned, "saved_model": str(target), "saved_model_rel_diff": diff}


def results_table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'backend':<8} {'stage':<12} {'return':>16} {'D4RL score':>12}"]
    for r in results:
        for stage in ("before", "after"):
            e = r[stage]
            label = "pre-trained" if stage == "before" else "fine-tuned"
            lines.append(f"{r['backend']:<8} {label:<12} {e['return_mean']:>8.1f} +- {e['return_std']:<5.1f} "
                         f"{e['d4rl_score_mean']:>12.1f}")
    return "\n".join(lines)


def plot_curves(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        pts = [(m["env_steps"], m["avg_episode_reward"]) for m in r["curve"] if m.get("avg_episode_reward")]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=f"{r['backend']} train episodes")
        last = r["curve"][-1]["env_steps"] if r["curve"] else 0
        ax.errorbar([0, last], [r["before"]["return_mean"], r["after"]["return_mean"]],
                    yerr=[r["before"]["return_std"], r["after"]["return_std"]], fmt="s--", capsize=4,
                    label=f"{r['backend']} eval (pre-trained -> fine-tuned)")
    ax.set_xlabel("environment steps of fine-tuning")
    ax.set_ylabel("episode return")
    ax.set_title("Hopper-v5: DPPO fine-tuning of the pre-trained diffusion policy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_main_job(job_path: str, backends: list[str], workdir: str, quiet: bool = False) -> list[dict[str, Any]]:
    job = load_config(job_path)
    out = Path(workdir)
    check_job(job, job_path, out)
    with LogdirLock(out):  # one main job per workdir; its pre-training and fine-tuning lock their own logdirs
        results = [run_backend(job, b, out, quiet) for b in backends]
        print(results_table(results))
        with writing(out / "reward_curve.png"):
            plot_curves(results, out / "reward_curve.png")
        with writing(out / "results.json"):
            (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {out / 'reward_curve.png'} and {out / 'results.json'}")
    return results
