"""Summarize a DDPO digits experiment (scripts/experiments/ddpo_digits.sh): for every run name and backend,
the evaluation reward and prompted-digit accuracy against the number of samples (mean and std over seeds),
as a markdown table (summary.md) and one plot per reward (reward_<reward>.png: a colour per run name, solid
torch, dashed TF).

    .venv/bin/python scripts/experiments/ddpo_summary.py RUNS_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def load(runs: Path) -> dict[tuple[str, str], list[list[dict]]]:
    """{(name, backend): [records of each seed]} of the evaluation records (iteration 0 included)."""
    out: dict[tuple[str, str], list[list[dict]]] = {}
    for metrics in sorted(runs.glob("*/*/seed*/metrics.jsonl")):
        name, backend = metrics.parts[-4], metrics.parts[-3]
        records = [json.loads(line) for line in metrics.read_text().splitlines()]
        out.setdefault((name, backend), []).append([r for r in records if "eval_reward" in r])
    return out


def curves(seeds: list[list[dict]], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """samples (P,), mean (P,), std (P,) over the seeds, on the evaluation points all seeds share."""
    n = min(len(s) for s in seeds)
    samples = np.array([r["samples"] for r in seeds[0][:n]])
    values = np.array([[r[key] for r in s[:n]] for s in seeds])
    return samples, values.mean(0), values.std(0)


def main(runs: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = load(runs)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["| run | backend | seeds | samples | eval reward before | eval reward after (mean +- std) | "
             "accuracy before | accuracy after (mean +- std) |", "|---|---|---|---|---|---|---|---|"]
    for (name, backend), seeds in sorted(data.items()):
        s, r_mean, r_std = curves(seeds, "eval_reward")
        _, a_mean, a_std = curves(seeds, "eval_accuracy")
        lines.append(f"| {name} | {backend} | {len(seeds)} | {s[-1]} | {r_mean[0]:.4f} | {r_mean[-1]:.4f} +- "
                     f"{r_std[-1]:.4f} | {a_mean[0]:.3f} | {a_mean[-1]:.3f} +- {a_std[-1]:.3f} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    rewards = sorted({name.split("_")[0] for name, _ in data})
    for reward in rewards:
        fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
        names = sorted({name for name, _ in data if name.split("_")[0] == reward})
        colors = {name: plt.get_cmap("tab10" if len(names) <= 10 else "tab20")(i) for i, name in enumerate(names)}
        for (name, backend), seeds in sorted(data.items()):
            if name.split("_")[0] != reward:
                continue
            for ax, key in zip(axes, ("eval_reward", "eval_accuracy")):
                s, m, sd = curves(seeds, key)
                label = f"{name.split('_', 1)[1]} ({backend}, {len(seeds)} runs)"
                ax.plot(s, m, label=label, color=colors[name], linestyle="-" if backend == "torch" else "--")
                ax.fill_between(s, m - sd, m + sd, color=colors[name], alpha=0.1)
        axes[0].set_ylabel("evaluation reward (64 fixed prompts and noises)")
        axes[1].set_ylabel("classifier reads the prompted digit")
        for ax in axes:
            ax.set_xlabel("samples")
        axes[1].legend(fontsize=7, bbox_to_anchor=(1.02, 1.0), loc="upper left")
        fig.suptitle(f"DDPO on the digits: {reward}")
        fig.tight_layout()
        fig.savefig(out / f"reward_{reward}.png", dpi=90)
        plt.close(fig)
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
