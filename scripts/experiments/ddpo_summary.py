"""Summarize a DDPO digits experiment (scripts/experiments/ddpo_digits.sh): for every run name, the evaluation
reward and prompted-digit accuracy against the number of samples (mean and std over seeds) on each backend, as a
markdown table with the backends side by side (summary.md) and two plots per reward: the algorithms
(reward_<reward>.png) and ISKL's variants (iskl_<reward>.png); a colour per run name, solid torch, dashed TF.

    .venv/bin/python scripts/experiments/ddpo_summary.py RUNS_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

BACKENDS = ("torch", "tf")


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


def variant(name: str) -> bool:
    """ISKL's variants (other KL coefficients or the Gaussian KL) go to their own plot."""
    rest = name.split("_", 1)[1]
    return rest.startswith("iskl_kl") or rest.startswith("iskl_gaussian")


def table(data: dict[tuple[str, str], list[list[dict]]]) -> str:
    """One row per run name: seeds, samples, the start, and the end on each backend (mean +- std over seeds)."""
    lines = ["| run | seeds torch / TF | samples | reward before | reward after, torch | reward after, TF | "
             "accuracy after, torch | accuracy after, TF |", "|---|---|---|---|---|---|---|---|"]
    for name in sorted({name for name, _ in data}):
        cells = {}
        for backend in BACKENDS:
            seeds = data.get((name, backend))
            if seeds is None:
                cells[backend] = None
                continue
            s, r_mean, r_std = curves(seeds, "eval_reward")
            _, a_mean, a_std = curves(seeds, "eval_accuracy")
            cells[backend] = (len(seeds), s[-1], r_mean[0], f"{r_mean[-1]:.4f} +- {r_std[-1]:.4f}",
                              f"{a_mean[-1]:.3f} +- {a_std[-1]:.3f}")
        first = next(c for c in cells.values() if c is not None)
        n = " / ".join(str(c[0]) if c else "-" for c in cells.values())
        lines.append(f"| {name} | {n} | {first[1]} | {first[2]:.4f} | " + " | ".join(
            c[3] if c else "-" for c in cells.values()) + " | " + " | ".join(
            c[4] if c else "-" for c in cells.values()) + " |")
    return "\n".join(lines) + "\n"


def plot(data: dict[tuple[str, str], list[list[dict]]], names: list[str], title: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    colors = {name: plt.get_cmap("tab10" if len(names) <= 10 else "tab20")(i) for i, name in enumerate(names)}
    for name in names:
        for backend in BACKENDS:
            seeds = data.get((name, backend))
            if seeds is None:
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
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(runs: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    data = load(runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(table(data))
    for reward in sorted({name.split("_")[0] for name, _ in data}):
        names = sorted({name for name, _ in data if name.split("_")[0] == reward})
        algorithms = [n for n in names if not variant(n)]
        plot(data, algorithms, f"DDPO on the digits: {reward}", out / f"reward_{reward}.png")
        variants = [n for n in names if variant(n) or n.split("_", 1)[1] in ("is", "iskl")]
        if len(variants) > 2:
            plot(data, variants, f"DDPO on the digits: {reward}, ISKL's KL term", out / f"iskl_{reward}.png")
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
