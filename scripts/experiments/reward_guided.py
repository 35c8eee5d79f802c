"""The recorded reward-guided experiment (docs/evidence/reward-guided.md): the author's settings
(configs/reward_guided/rosenbrock.yaml) trained with `dppo guide train` for 5 seeds on both backends, with
the reward's gradient cut (the author's code path) and reaching the denoiser; each run logs its validation
reward with and without MPPI every epoch. Writes the per-epoch table (mean and standard error over seeds)
beside the published values, the reference levels, the acceptance check and a plot.

    .venv/bin/python scripts/experiments/reward_guided.py --out docs/evidence/reward_guided   # ~10 min, 2 cores

Runs live in runs/reward_guided/<backend>/<gradient>/seed<k> and are reused when finished (rerunning
resumes unfinished ones).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shared.guided.rosenbrock import reference_levels  # noqa: E402

CONFIG = "configs/reward_guided/rosenbrock.yaml"
# the note's table: validation reward by epoch, 12 epochs, MPPI with 4 candidates (the author's log.csv)
PUBLISHED = [-0.954, -0.478, -0.408, -0.397, -0.309, -0.293, -0.241, -0.185, -0.183, -0.181, -0.191, -0.177]
GRADIENTS = {"detached": "false", "gradient": "true"}


def run_one(root: Path, backend: str, gradient: str, seed: int) -> list[dict]:
    logdir = root / backend / gradient / f"seed{seed}"
    metrics = logdir / "metrics.jsonl"
    done = [json.loads(x) for x in metrics.read_text().splitlines()] if metrics.exists() else []
    if len(done) < len(PUBLISHED):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        subprocess.run([sys.executable, "-m", "dppo.cli", "guide", "train", "--config", CONFIG, "--backend", backend,
                        "--quiet", f"logdir={logdir}", f"seed={seed}",
                        f"train.reward_gradient={GRADIENTS[gradient]}"], check=True, env=env, cwd=REPO)
        done = [json.loads(x) for x in metrics.read_text().splitlines()]
    return done


def mean_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the mean over seeds and its standard error."""
    return values.mean(axis=0), values.std(axis=0, ddof=1) / math.sqrt(values.shape[0])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "docs/evidence/reward_guided")
    p.add_argument("--runs", type=Path, default=REPO / "runs/reward_guided")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    jobs = [(b, g, s) for b in ("torch", "tf") for g in GRADIENTS for s in range(args.seeds)]
    with ThreadPoolExecutor(args.workers) as pool:
        records = dict(zip(jobs, pool.map(lambda j: run_one(args.runs, *j), jobs)))
    curves: dict[str, dict[str, list[float]]] = {}
    lines = ["| epoch | published | " + " | ".join(f"{b} {g} {m}" for b in ("torch", "tf") for g in GRADIENTS
                                                 for m in ("MPPI", "no MPPI")) + " |",
             "|---:|---:|" + "---:|" * 8]
    table = {}
    for b in ("torch", "tf"):
        for g in GRADIENTS:
            for key, m in (("val_reward", "MPPI"), ("val_reward_plain", "no MPPI")):
                values = np.array([[r[key] for r in records[(b, g, s)]] for s in range(args.seeds)])
                table[(b, g, m)] = mean_se(values)
                curves[f"{b} {g} {m}"] = table[(b, g, m)][0].tolist()
    for e in range(len(PUBLISHED)):
        cells = [f"{table[(b, g, m)][0][e]:.3f} +- {table[(b, g, m)][1][e]:.3f}" for b in ("torch", "tf")
                 for g in GRADIENTS for m in ("MPPI", "no MPPI")]
        lines.append(f"| {e + 1} | {PUBLISHED[e]:.3f} | " + " | ".join(cells) + " |")
    levels = [reference_levels(s) for s in range(args.seeds)]
    level = {k: float(np.mean([lv[k] for lv in levels])) for k in levels[0]}
    checks = []
    for b in ("torch", "tf"):
        mean, se = table[(b, "detached", "MPPI")]
        for e in range(7, 12):
            allowed = max(0.05, 3 * se[e])
            checks.append({"backend": b, "epoch": e + 1, "ours": float(mean[e]), "published": PUBLISHED[e],
                           "distance": abs(float(mean[e]) - PUBLISHED[e]), "allowed": allowed,
                           "ok": abs(float(mean[e]) - PUBLISHED[e]) <= allowed})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    (args.out / "results.json").write_text(json.dumps({"published": PUBLISHED, "curves": curves, "levels": level,
                                                       "acceptance": checks, "seeds": args.seeds}, indent=1))
    plot(curves, level, args.out / "reward_guided.png")
    print("\n".join(lines))
    print(f"levels (mean over seeds): {level}")
    for c in checks:
        print(f"{c['backend']} epoch {c['epoch']}: ours {c['ours']:.3f}, published {c['published']:.3f}, "
              f"|diff| {c['distance']:.3f} <= {c['allowed']:.3f}: {'ok' if c['ok'] else 'NO'}")
    return 0 if all(c["ok"] for c in checks) else 1


def plot(curves: dict[str, list[float]], level: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    epochs = np.arange(1, len(PUBLISHED) + 1)
    ax.plot(epochs, PUBLISHED, "k*-", lw=2, label="published (author's log)")
    for name, values in curves.items():
        ax.plot(epochs, values, "--" if "no MPPI" in name else "-", alpha=0.8, label=name)
    for name, style in (("data", ":"), ("random", "-."), ("optimum", (0, (1, 4)))):
        ax.axhline(level[name], color="gray", linestyle=style, label=f"{name} p: {level[name]:.3f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation reward, mean tanh(-cost / 5)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
