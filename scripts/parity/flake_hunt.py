"""Flake hunt: run the parity gate on unchanged twins over many configs and seeds (not a CI test).

Every gate run is `TwinBench(cfg).report(seed)`, what `dppo parity --seed N` checks. A correct pair of
twins must pass every run; the summary prints failures / runs and, per config and per section, the
worst margin (d64 / budget; the smallest K that would still have passed is margin x K).

    .venv/bin/python scripts/parity/flake_hunt.py --seeds 112 --out runs/flake_hunt.jsonl
    .venv/bin/python scripts/parity/flake_hunt.py --summary runs/flake_hunt.jsonl

Results append to --out one JSON line per run; a rerun skips the (config, seed) pairs already there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

UPSTREAM = "tests/fixtures/upstream_cfg/cfg/gym"
HOPPER_FT = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
# (label, config path, overrides): the shipped configs, upstream's gym configs, DDIM variants
CONFIGS: list[tuple[str, str, list[str]]] = [
    ("hopper/pretrain", "configs/hopper/pretrain_diffusion_mlp.yaml", []),
    ("hopper/finetune_dppo", HOPPER_FT, []),
    ("hopper/ppo_gaussian", "configs/hopper/ppo_gaussian_mlp.yaml", []),
    *[(f"upstream/{env}/{name}", f"{UPSTREAM}/{kind}/{env}{suffix}/{name}.yaml", [])
      for env in ("hopper", "walker2d", "halfcheetah")
      for kind, suffix, name in (("pretrain", "-medium-v2", "pre_diffusion_mlp"),
                                 ("finetune", "-v2", "ft_ppo_diffusion_mlp"),
                                 ("finetune", "-v2", "ppo_diffusion_mlp"),
                                 ("finetune", "-v2", "ppo_gaussian_mlp"))],
    ("hopper/finetune_ddim", HOPPER_FT, ["model.use_ddim=true", "model.ddim_steps=5", "ft_denoising_steps=5"]),
    ("hopper/finetune_ddim_eta0.5", HOPPER_FT, ["model.use_ddim=true", "model.ddim_steps=5", "ft_denoising_steps=5",
                                                "model.eta={base_eta: 0.5}"]),
    ("hopper/finetune_ddim_learned_eta", HOPPER_FT,
     ["model.use_ddim=true", "model.ddim_steps=5", "ft_denoising_steps=5", "model.learn_eta=true",
      "model.eta={_target_: model.diffusion.eta.EtaAction, base_eta: 0.5, input_dim: 3, mlp_dims: [16, 16], "
      "action_dim: 3, min_eta: 0.1, max_eta: 1.0}", "train.eta_lr=1e-4", "train.eta_weight_decay=0",
      "train.eta_lr_scheduler={first_cycle_steps: 100, warmup_steps: 10, min_lr: 1e-5}"]),
]


def hunt(seeds: int, out: Path, only: list[str] | None) -> None:
    from dppo.parity.engine import TwinBench
    from shared import tolerances as tol
    from shared.settings import load_settings

    done = {(r["config"], r["seed"]) for r in _records(out)}
    out.parent.mkdir(parents=True, exist_ok=True)
    for label, path, overrides in CONFIGS:
        if only and label not in only:
            continue
        todo = [s for s in range(seeds) if (label, s) not in done]
        if not todo:
            continue
        extra = [] if "pretrain" in path else ["base_policy_path=null"]
        cfg = load_settings(path, [*extra, *overrides])
        bench = TwinBench(cfg)
        for seed in todo:
            start = time.perf_counter()
            report = bench.report(seed)
            worst: dict[str, float] = defaultdict(float)
            for r in report.rows:
                worst[f"{r.kind}:{r.section}"] = max(worst[f"{r.kind}:{r.section}"], r.margin)
            record = {"config": label, "seed": seed, "ok": report.ok, "checks": len(report.rows), "K": tol.K_PARITY,
                      "failures": [f"{r.section} {r.name}" for r in report.failures],
                      "worst_margin": report.worst.margin, "worst_check": f"{report.worst.section} {report.worst.name}",
                      "section_margins": worst, "seconds": round(time.perf_counter() - start, 2)}
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"{label} seed {seed}: {'ok' if report.ok else 'FAIL'} worst margin {record['worst_margin']:.3f} "
                  f"({record['worst_check']}) {record['seconds']}s", flush=True)


def _records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _at_current_k(record: dict, k_now: float) -> dict:
    """A run recorded under another K, re-judged under k_now: twins margins scale as K_then / K_now
    (runs recorded before K was stored used K = 16)."""
    scale = record.get("K", 16.0) / k_now
    margins = {k: (m * scale if k.startswith("twins:") else m) for k, m in record["section_margins"].items()}
    worst = max(margins, key=margins.get)
    check = record["worst_check"] if scale == 1.0 else f"{worst} (section)"
    return {**record, "section_margins": margins, "worst_margin": margins[worst], "worst_check": check,
            "ok": margins[worst] <= 1.0}


def summary(path: Path) -> str:
    from shared import tolerances as tol

    records = [_at_current_k(r, tol.K_PARITY) for r in _records(path)]
    by_config: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_config[r["config"]].append(r)
    lines = [f"{'config':<40} {'runs':>5} {'fail':>5} {'checks/run':>10} {'worst margin':>12}  worst check"]
    for label, rs in by_config.items():
        w = max(rs, key=lambda r: r["worst_margin"])
        lines.append(f"{label:<40} {len(rs):>5} {sum(not r['ok'] for r in rs):>5} {rs[0]['checks']:>10} "
                     f"{w['worst_margin']:>12.3f}  {w['worst_check']} (seed {w['seed']})")
    sections: dict[str, float] = defaultdict(float)
    for r in records:
        for k, m in r["section_margins"].items():
            sections[k] = max(sections[k], m)
    lines.append("")
    lines.append(f"{'check (kind:section)':<40} {'worst margin':>12}")
    for k in sorted(sections, key=lambda k: -sections[k]):
        lines.append(f"{k:<40} {sections[k]:>12.3f}")
    twins = max((m for k, m in sections.items() if k.startswith("twins:")), default=0.0)
    failures = sum(not r["ok"] for r in records)
    rounding = max((m for k, m in sections.items() if k.startswith("rounding:")), default=0.0)
    lines.append("")
    lines.append(f"{failures} failures in {len(records)} gate runs "
                 f"({sum(r['checks'] for r in records)} checks, {len(by_config)} configs)")
    lines.append(f"float64 rule: K = {tol.K_PARITY:g}, smallest K that passes every run = {twins * tol.K_PARITY:.2f}")
    lines.append(f"rounding rule: K_ROUNDING = {tol.K_ROUNDING:g}, worst tf/torch ratio = "
                 f"{rounding * tol.K_ROUNDING:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=112, help="seeds 0..N-1 per config")
    parser.add_argument("--out", type=Path, default=Path("runs/flake_hunt.jsonl"), help="JSON lines, one per run")
    parser.add_argument("--config", action="append", help="only these config labels (repeatable)")
    parser.add_argument("--summary", type=Path, help="print the summary of an existing results file and exit")
    args = parser.parse_args()
    if args.summary:
        print(summary(args.summary))
        return
    hunt(args.seeds, args.out, args.config)
    print(summary(args.out))


if __name__ == "__main__":
    main()
