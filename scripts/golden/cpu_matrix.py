"""CPU-dispatch matrix: the golden suite and `dppo parity` on the shipped configs under the CPU settings
users' machines have (not a CI test).

One fresh process per setting (the variables act when torch / TF load), over

    ATEN_CPU_CAPABILITY  default, avx2, avx512 (where the CPU has AVX-512)   torch's kernels
    ONEDNN_MAX_CPU_ISA   AVX2, AVX512_CORE (where the CPU has AVX-512)        oneDNN in torch and TF
    TF_ENABLE_ONEDNN_OPTS 0, 1                                                TF's oneDNN or Eigen kernels
    OMP_NUM_THREADS      1, 2                                                 reduction orders

By default the settings are an all-pairs design (every value of each variable meets every value of every
other in some setting: 6 settings on an AVX-512 machine); `--full` runs the whole product (24).
For each: `pytest tests/golden` (every check's margin through DPPO_MARGINS_JSON; the deliberate-drift tests
must still fail their gate, reported as the weakest catch) and the parity gate on every shipped config,
each exactly `dppo parity --config C --seed 0` (about 5 minutes per setting on 2 cores). Prints per setting the
failures and the worst margin (how close a check came to its budget), and exits 1 if any setting failed.

    .venv/bin/python scripts/golden/cpu_matrix.py --out runs/cpu_matrix        # resumable
    .venv/bin/python scripts/golden/cpu_matrix.py --out runs/cpu_matrix --summary
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# the shipped configs `dppo parity` accepts (the job configs of `dppo main` / experiment hold no model; the
# reward-guided ones are `dppo guide`'s, their twins judged by parity_tests/test_guided_parity.py)
PARITY_CONFIGS = sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").glob("*/*.yaml")
                        if not p.name.endswith("_job.yaml") and p.parent.name != "reward_guided")


def has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def settings(avx512: bool, full: bool = False) -> list[dict[str, str]]:
    """Every combination (`full`), or the fewest that still pair every value of each variable with every value
    of every other (all pairs: 6 settings instead of 24 on an AVX-512 machine, 4 instead of 8 without)."""
    axes = {"ATEN_CPU_CAPABILITY": ["default", "avx2", *(["avx512"] if avx512 else [])],
            "ONEDNN_MAX_CPU_ISA": ["AVX2", *(["AVX512_CORE"] if avx512 else [])],
            "TF_ENABLE_ONEDNN_OPTS": ["0", "1"], "OMP_NUM_THREADS": ["1", "2"]}
    product = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    return product if full else all_pairs(product)


def all_pairs(candidates: list[dict[str, str]]) -> list[dict[str, str]]:
    """Greedy covering: repeatedly the candidate that covers the most (variable, value) pairs not yet covered."""
    def pairs(setting: dict[str, str]) -> set[tuple[tuple[str, str], tuple[str, str]]]:
        return set(itertools.combinations(sorted(setting.items()), 2))

    uncovered = set().union(*(pairs(c) for c in candidates))
    chosen = []
    while uncovered:
        best = max(candidates, key=lambda c: len(pairs(c) & uncovered))
        chosen.append(best)
        uncovered -= pairs(best)
    return chosen


def label(setting: dict[str, str]) -> str:
    return (f"aten={setting['ATEN_CPU_CAPABILITY']} onednn={setting['ONEDNN_MAX_CPU_ISA']} "
            f"tf_onednn={setting['TF_ENABLE_ONEDNN_OPTS']} omp={setting['OMP_NUM_THREADS']}")


def slug(setting: dict[str, str]) -> str:
    return "_".join(setting[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS",
                                         "OMP_NUM_THREADS")).lower()


# ---------------------------------------------------------------- one setting (a fresh process)


def run_setting(setting: dict[str, str], out: Path, configs: list[str]) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **setting, "TF_CPP_MIN_LOG_LEVEL": "3", "DPPO_MARGINS_JSON": str(out / "golden.json"),
           "TF_NUM_INTEROP_THREADS": setting["OMP_NUM_THREADS"], "TF_NUM_INTRAOP_THREADS": setting["OMP_NUM_THREADS"]}
    start = time.time()
    golden = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/golden"],
                            cwd=REPO, env=env, capture_output=True, text=True)
    (out / "golden.log").write_text(golden.stdout + golden.stderr)
    parity = subprocess.run([sys.executable, __file__, "--parity-worker", str(out / "parity.json"), *configs],
                            cwd=REPO, env=env, capture_output=True, text=True)
    (out / "parity.log").write_text(parity.stdout + parity.stderr)
    result = {"setting": setting, "seconds": round(time.time() - start, 1),
              "golden": golden_summary(out / "golden.json", golden.returncode, golden.stdout),
              "parity": parity_summary(out / "parity.json", parity.returncode)}
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def golden_summary(path: Path, returncode: int, stdout: str) -> dict:
    rows = json.loads(path.read_text()) if path.exists() else []
    margin = lambda r: float(r["margin"])  # noqa: E731 ("inf" reads as inf)
    judged = [r for r in rows if not r["drift"]]
    worst = max(judged, key=margin, default=None)
    catches: dict[str, dict] = {}
    for r in rows:
        if r["drift"] and (r["test"] not in catches or margin(r) > margin(catches[r["test"]])):
            catches[r["test"]] = r
    weakest = min(catches.values(), key=margin, default=None)
    last = [line for line in stdout.splitlines() if " passed" in line or " failed" in line or " error" in line]
    return {"ok": returncode == 0, "pytest": last[-1].strip("= ") if last else f"exit {returncode}",
            "checks": len(judged), "past_budget": sum(margin(r) > 1 for r in judged),
            "worst_margin": margin(worst) if worst else None, "worst_check": worst["check"] if worst else None,
            "drift_tests": len(catches), "drifts_missed": sum(margin(r) <= 1 for r in catches.values()),
            "weakest_catch": margin(weakest) if weakest else None,
            "weakest_catch_check": weakest["check"] if weakest else None}


def parity_summary(path: Path, returncode: int) -> dict:
    if not path.exists():
        return {"ok": False, "error": f"parity worker exited {returncode} without a report"}
    reports = json.loads(path.read_text())
    twins = [(cfg, r) for cfg, rep in reports.items() for r in rep["rows"] if r["kind"] == "twins"]
    rounding = [(cfg, r) for cfg, rep in reports.items() for r in rep["rows"] if r["kind"] == "rounding"]
    worst = max(twins, key=lambda cr: float(cr[1]["margin"]))
    worst_rounding = max(rounding, key=lambda cr: float(cr[1]["value"]))
    return {"ok": returncode == 0 and all(rep["ok"] for rep in reports.values()), "configs": len(reports),
            "checks": sum(rep["num_checks"] for rep in reports.values()),
            "failures": sum(rep["num_failures"] for rep in reports.values()),
            "worst_margin": float(worst[1]["margin"]), "worst_check": f"{worst[0]}: {worst[1]['section']} "
                                                                      f"{worst[1]['name']}",
            "worst_rounding_ratio": float(worst_rounding[1]["value"])}


def parity_worker(out: Path, configs: list[str]) -> int:
    """In this process (the setting is in its environment): the gate on each config, seed 0."""
    sys.path.insert(0, str(REPO))
    from dppo.parity.engine import run_parity
    from shared.settings import load_settings

    reports = {}
    for config in configs:
        reports[config] = run_parity(load_settings(config, []), seed=0).to_json()
        out.write_text(json.dumps(reports) + "\n")
    return 0 if all(r["ok"] for r in reports.values()) else 1


# ---------------------------------------------------------------- the table


def table(results: list[dict]) -> str:
    lines = ["| setting | golden (pytest) | golden worst margin | weakest drift catch | parity checks / failures "
             "| parity worst margin | rounding ratio | s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        g, p = r["golden"], r["parity"]
        parity = (f"{p['checks']} / {p['failures']}", f"{p['worst_margin']:.3f}", f"{p['worst_rounding_ratio']:.2f}") \
            if "checks" in p else (p.get("error", "?"), "-", "-")
        lines.append(f"| {label(r['setting'])} | {g['pytest']} | {g['worst_margin']:.3f} | "
                     f"{g['weakest_catch']:.3g} | {parity[0]} | {parity[1]} | {parity[2]} | {r['seconds']:.0f} |")
    bad = [r for r in results if not (r["golden"]["ok"] and r["parity"]["ok"] and not r["golden"]["drifts_missed"])]
    g_worst = max(results, key=lambda r: r["golden"]["worst_margin"])
    p_worst = max((r for r in results if "worst_margin" in r["parity"]), key=lambda r: r["parity"]["worst_margin"])
    lines += ["", f"{len(results)} settings, {len(bad)} failed"
                  + (": " + ", ".join(label(r["setting"]) for r in bad) if bad else ""),
              f"golden worst margin {g_worst['golden']['worst_margin']:.3f} ({g_worst['golden']['worst_check']}; "
              f"{label(g_worst['setting'])})",
              f"parity worst margin {p_worst['parity']['worst_margin']:.3f} ({p_worst['parity']['worst_check']}; "
              f"{label(p_worst['setting'])})"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "runs/cpu_matrix", help="one folder per setting")
    p.add_argument("--summary", action="store_true", help="print the table of the settings already run")
    p.add_argument("--only", nargs="*", default=None, help="setting slugs to run (e.g. avx2_avx2_0_1)")
    p.add_argument("--full", action="store_true", help="every combination instead of all pairs")
    p.add_argument("--parity-worker", type=Path, help=argparse.SUPPRESS)
    p.add_argument("configs", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.parity_worker:
        return parity_worker(args.parity_worker, args.configs)
    results = []
    for setting in settings(has_avx512(), args.full):
        if args.only is not None and slug(setting) not in args.only:
            continue
        folder = args.out / slug(setting)
        if (folder / "result.json").exists():
            results.append(json.loads((folder / "result.json").read_text()))
        elif not args.summary:
            print(f"running {label(setting)} ...", flush=True)
            results.append(run_setting(setting, folder, PARITY_CONFIGS))
            g, q = results[-1]["golden"], results[-1]["parity"]
            print(f"  golden: {g['pytest']}, worst margin {g['worst_margin']}; parity: ok={q['ok']} "
                  f"worst margin {q.get('worst_margin')}; {results[-1]['seconds']:.0f} s", flush=True)
    if not results:
        print("no settings run yet")
        return 1
    print(table(results))
    failed = [r for r in results if not (r["golden"]["ok"] and r["parity"]["ok"] and not r["golden"]["drifts_missed"])]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
