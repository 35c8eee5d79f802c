"""`dppo compare`'s outputs from the runs' metrics.jsonl (written by dppo.training.finetune.run_iterations, the
same records for every algorithm) and final evaluations: compare.png (mean evaluation return against
environment steps, one curve per config x backend, a band of one std over seeds), results.md and
results.json. Nothing here knows an algorithm: a row is a config's name, its display name and a backend.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dppo.runs.files import writing
from shared.checkpoint import atomic_write
from shared.data.envs import d4rl_normalized_score


def run_summary(metrics: list[dict[str, Any]], n_train_itr: int, final_eval: dict[str, Any] | None) -> dict[str, Any]:
    """One run: its evaluation curve [(env steps, mean return)], final returns (the final evaluation's
    episodes, else the last evaluation iteration's: its `episode_returns`, or only its mean in metrics
    written before they were recorded), best evaluation return, env steps and fine-tuning wall time."""
    records = [r for r in metrics if r.get("itr", 0) < n_train_itr]
    evals = [r for r in records if r.get("eval") and r.get("avg_episode_reward") is not None]
    curve = [[int(r["env_steps"]), float(r["avg_episode_reward"])] for r in evals]
    returns: list[float] | None = None
    mean: float | None = None
    source = None
    if final_eval is not None:
        returns, source = [float(x) for x in final_eval["returns"]], f"final evaluation ({final_eval['checkpoint']})"
    elif evals:
        last = evals[-1]
        returns = last.get("episode_returns")
        mean = float(last["avg_episode_reward"])
        source = f"evaluation iteration {last['itr']}"
    if returns is not None:
        mean = float(np.mean(returns))
    return {"curve": curve, "final_returns": returns, "final_mean": mean, "final_from": source,
            "best_return": max((y for _, y in curve), default=None),
            "env_steps": int(records[-1]["env_steps"]) if records else 0,
            "wall_time_s": float(sum(r.get("seconds", 0.0) for r in records)),
            "iterations": len(records)}


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _std(values: Sequence[float]) -> float | None:
    return float(np.std(values)) if len(values) else None


def mean_curve(curves: list[list[list[float]]]) -> list[dict[str, float]]:
    """Seed curves joined on env steps: mean and std over the seeds that evaluated there."""
    at: dict[int, list[float]] = {}
    for curve in curves:
        for steps, value in curve:
            at.setdefault(int(steps), []).append(value)
    return [{"env_steps": s, "mean": float(np.mean(v)), "std": float(np.std(v)), "seeds": len(v)}
            for s, v in sorted(at.items())]


def row_summary(env_name: str, name: str, algorithm: str, backend: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One config x backend over its seeds (failed runs listed, left out of the numbers): final return
    mean, its std over all evaluation episodes of all seeds and over the seeds' means, best point of
    the mean curve, env steps, wall time per run and the D4RL-normalized score of the final return."""
    done = [r for r in runs if "failed" not in r and r["final_mean"] is not None]
    means = [r["final_mean"] for r in done]
    per_episode = all(r["final_returns"] is not None for r in done)
    episodes = [x for r in done for x in (r["final_returns"] or [])]
    curve = mean_curve([r["curve"] for r in done])
    scores = d4rl_normalized_score(env_name, np.asarray(episodes if per_episode else means, np.float64))
    row = {"config": name, "algorithm": algorithm, "backend": backend,
           "seeds": [r["seed"] for r in done], "failed_seeds": [r["seed"] for r in runs if "failed" in r],
           "final_return_mean": _mean(means),
           "final_return_std_episodes": _std(episodes) if per_episode and done else None,
           "final_return_std_seeds": _std(means) if len(done) > 1 else None,
           "final_episodes": len(episodes) if per_episode else None,
           "best_return": max((p["mean"] for p in curve), default=None),
           "env_steps": int(np.mean([r["env_steps"] for r in done])) if done else None,
           "wall_time_s": _mean([r["wall_time_s"] for r in done]),
           "d4rl_score_mean": None if scores is None or not done else float(np.mean(scores)),
           "d4rl_score_std": None if scores is None or not done else float(np.std(scores)),
           "curve": curve, "runs": runs}
    return row


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def results_markdown(env_name: str, rows: list[dict[str, Any]], eval_episodes: int) -> str:
    final = (f"final evaluation of the last checkpoint over {eval_episodes} whole episodes per seed"
             if eval_episodes else "the last evaluation iteration's episodes")
    lines = [f"# dppo compare: {env_name}", "",
             f"Final return: {final}; std over those episodes (all seeds pooled) and over the seeds' means. "
             "Best: highest point of the mean evaluation curve. Env steps and wall time: fine-tuning, per run.", "",
             "| algorithm | config | backend | seeds | final return | std (episodes) | std (seeds) | best | env steps "
             "| wall time (s) | D4RL score |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        seeds = ",".join(map(str, r["seeds"])) + (f" (failed: {','.join(map(str, r['failed_seeds']))})"
                                                  if r["failed_seeds"] else "")
        score = "n/a" if r["d4rl_score_mean"] is None else (
            f"{r['d4rl_score_mean']:.1f} +- {r['d4rl_score_std']:.1f}")
        lines.append(f"| {r['algorithm']} | {r['config']} | {r['backend']} | {seeds} | {_fmt(r['final_return_mean'])} "
                     f"| {_fmt(r['final_return_std_episodes'])} | {_fmt(r['final_return_std_seeds'])} "
                     f"| {_fmt(r['best_return'])} | {r['env_steps'] if r['env_steps'] is not None else 'n/a'} "
                     f"| {_fmt(r['wall_time_s'])} | {score} |")
    return "\n".join(lines) + "\n"


def line_styles(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(colour, line style) per (config, backend): one tab10 colour per config, torch solid, tf dashed."""
    configs = list(dict.fromkeys(r["config"] for r in rows))
    return {(r["config"], r["backend"]): (f"C{configs.index(r['config']) % 10}", "--" if r["backend"] == "tf" else "-")
            for r in rows}


def plot_comparison(env_name: str, rows: list[dict[str, Any]], path: Path) -> None:
    """Mean evaluation return against env steps; one colour per config, torch solid, tf dashed; a band
    of one std over seeds where several evaluated; the final return as a marker at the last env step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = line_styles(rows)
    fig, ax = plt.subplots(figsize=(11, 5))
    for r in rows:
        colour, style = styles[r["config"], r["backend"]]
        label = f"{r['algorithm']} ({r['config']}), {r['backend']}"
        if r["curve"]:
            x = np.array([p["env_steps"] for p in r["curve"]])
            y = np.array([p["mean"] for p in r["curve"]])
            ax.plot(x, y, style, color=colour, marker="o", markersize=3, label=label)
            label = None
            if len(r["seeds"]) > 1:
                sd = np.array([p["std"] for p in r["curve"]])
                ax.fill_between(x, y - sd, y + sd, color=colour, alpha=0.15, linewidth=0)
        if r["final_return_mean"] is not None:
            ax.plot([r["env_steps"]], [r["final_return_mean"]], "s" if r["backend"] == "torch" else "D",
                    color=colour, markerfacecolor="none" if r["backend"] == "tf" else colour, label=label)
    ax.set_xlabel("environment steps of fine-tuning")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"{env_name}: fine-tuning algorithms compared (squares/diamonds: final return)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)  # beside the curves
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)


def write_report(summaries: list[tuple[Any, dict[str, Any]]], out: Path, env_name: str,
                 eval_episodes: int) -> dict[str, Any]:
    """results.json, results.md and compare.png in `out` from (run, summary) pairs; returns the report."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    algorithms: dict[str, str] = {}
    for run, summary in summaries:
        groups.setdefault((run.name, run.backend), []).append(summary)
        algorithms[run.name] = run.algorithm
    rows = [row_summary(env_name, name, algorithms[name], backend, runs) for (name, backend), runs in groups.items()]
    report = {"env_name": env_name, "eval_episodes": eval_episodes, "rows": rows}
    markdown = results_markdown(env_name, rows, eval_episodes)
    for name, write in (("results.json", lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2))),
                        ("results.md", lambda tmp: Path(tmp).write_text(markdown))):
        with writing(out / name):
            atomic_write(out / name, write)
    with writing(out / "compare.png"):
        plot_comparison(env_name, rows, out / "compare.png")
    return report
