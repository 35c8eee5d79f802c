"""Mutation testing of the parity gate: how many one-token drifts in ONE twin does `dppo parity` catch?

Not a CI test. For every mutant of scripts/parity/mutant_catalogue.py (one exact snippet of one file of
core_torch/ or core_tf/ replaced), a copy of the repository's code gets the change and a fresh Python
process runs the gate, `TwinBench(cfg, batch=4).report(seed=0)` (what `dppo parity --seed 0` checks),
on the small configs below that exercise the mutated file. A mutant is

    caught     the gate fails on some config (the failing checks and the worst margin are recorded)
    crashed    the gate raised on some config and failed on none (caught by a crash; listed apart)
    survived   the gate passes everywhere although the mutated twin's outputs changed
    equivalent the mutated twin's outputs are those of the unmutated code (float64 and float32):
               nothing can catch it on these inputs, so it is left out of the catch rate

catch rate = (caught + crashed) / (caught + crashed + survived). Outputs are compared with a baseline
run of the unmutated code (every quantity the gate compares and the learning-rate tables, of the
mutated twin only). Margins are d64 / budget: a caught mutant whose worst failing check has margin
> 10 would still be caught with K ten times larger (the gate's slack).

    python scripts/parity/mutants.py --out runs/mutants.json     # everything (about 80 min on 2 cores)
    python scripts/parity/mutants.py --only T04 --only F13       # some mutants
    python scripts/parity/mutants.py --list                      # the catalogue, each snippet checked
    python scripts/parity/mutants.py --summary runs/mutants.json # the table of an earlier run

Configs run in the order of CONFIGS (the four the issue's brief named first); a mutant's run stops at
the first config that catches it with margin > 10. Results go to --out as JSON, rewritten after each
mutant; a rerun skips the mutants already there (--redo: not), except that configs added or edited
since are run for the mutants no earlier config settled.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutant_catalogue import CATALOGUE, Mutant, families_for  # noqa: E402

COPY = ("core_torch", "core_tf", "shared", "dppo", "configs", "scripts/parity")
SEED, BATCH = 0, 4
STOP_MARGIN = 10.0  # a config that catches with a margin above this ends the mutant's run
CHANGE_RTOL = {"float64": 1e-13, "float32": 1e-6}  # relative change of a quantity that counts as an output change

FT = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
_SMALL_FT = ["base_policy_path=null", "model.actor.mlp_dims=[32,32,32]", "model.critic.mlp_dims=[32,32,32]"]
_LEARNED_ETA = ["model.use_ddim=true", "denoising_steps=8", "model.ddim_steps=4", "ft_denoising_steps=4",
                "model.learn_eta=true",
                "model.eta={_target_: model.diffusion.eta.EtaStateAction, base_eta: 0.5, mlp_dims: [16, 16], "
                "min_eta: 0.1, max_eta: 1.0}",
                "train.eta_lr=1e-4", "train.eta_weight_decay=0",
                # a constant eta lr: dppo/parity/engine.py's teacher-forced PPO updates restart at scheduler step i
                # while the torch agent's schedulers stay at 0, so a warm-up schedule fails unmutated code
                "train.eta_lr_scheduler={first_cycle_steps: 100, warmup_steps: 10, min_lr: 1e-4}"]
# no BC term (train.use_bc_loss): core_tf/algorithms/ppo_diffusion.py makes bc_coef a float32 constant, so the float64
# reference update fails on unmutated code (TypeError in the compiled update)
_PPO_EXTRAS = ["train.max_grad_norm=0.1", "train.actor_weight_decay=0.01", "train.critic_weight_decay=0.01",
               "train.ent_coef=0.01", "model.clip_vloss_coef=0.1", "model.clip_advantage_lower_quantile=0.1",
               "model.clip_advantage_upper_quantile=0.9"]
# (label, family, config path, overrides, added): the brief's four configs first, then four added because
# 22 mutants that change outputs on real configs changed nothing on those four (code paths none of them runs)
CONFIGS: list[tuple[str, str, str, list[str], bool]] = [
    ("pretrain", "pretrain", "configs/hopper/pretrain_diffusion_mlp.yaml",
     ["model.network.mlp_dims=[32,32,32]", "denoising_steps=6"], False),
    ("ft_ddpm", "dppo", FT, [*_SMALL_FT, "denoising_steps=6", "ft_denoising_steps=3"], False),
    ("ft_ddim_learned_eta", "dppo", FT, [*_SMALL_FT, *_LEARNED_ETA], False),
    ("ppo_gaussian", "gauss", "configs/hopper/ppo_gaussian_mlp.yaml",
     ["model.actor.mlp_dims=[32,32,32]", "model.critic.mlp_dims=[32,32,32]"], False),
    # residual-block LayerNorms, gradient clipping, the final action clip
    ("pretrain_extras", "pretrain", "configs/hopper/pretrain_diffusion_mlp.yaml",
     ["model.network.mlp_dims=[32,32,32]", "denoising_steps=6", "model.network.use_layernorm=true",
      "train.max_grad_norm=0.1", "model.final_action_clip_value=0.5"], True),
    # gradient clipping, weight decay, entropy coefficient, value clipping, advantage quantiles, an
    # observation history (cond_steps 2), and an actor wide enough for torch's float32-only oneDNN matmuls
    # (core_torch/networks/linear.py) on the 12-row log-prob and update batches
    ("ft_ddpm_extras", "dppo", FT,
     ["base_policy_path=null", "model.actor.mlp_dims=[256,256,256]", "model.critic.mlp_dims=[32,32,32]",
      "denoising_steps=6", "ft_denoising_steps=3", "cond_steps=2", "model.cond_steps=2", *_PPO_EXTRAS], True),
    # learned eta with K < S, an entropy coefficient (eta's gradient), eps clipping, and a sampling std floor
    # that differs from the log-prob floor
    ("ft_ddim_extras", "dppo", FT,
     [*_SMALL_FT, *_LEARNED_ETA, "ft_denoising_steps=3", "model.min_sampling_denoising_std=0.08",
      "model.eps_clip_value=1.5", *_PPO_EXTRAS], True),
    # plain-MLP LayerNorms, a randn clip that binds on 4 x 3 noise values, entropy, value clipping, and a
    # gradient-norm bound the gradients stay under (clip_grad_norm's no-clipping branch)
    ("ppo_gaussian_extras", "gauss", "configs/hopper/ppo_gaussian_mlp.yaml",
     ["model.actor.mlp_dims=[32,32,32]", "model.critic.mlp_dims=[32,32,32]", "model.actor.use_layernorm=true",
      "model.randn_clip_value=1.0", "train.ent_coef=0.01", "train.max_grad_norm=100", "model.clip_vloss_coef=0.1"],
     True),
]


def config_key(label: str) -> str:
    """The label and a hash of the config's definition: baselines and records of an edited config go stale."""
    _, _, path, overrides, _ = next(c for c in CONFIGS if c[0] == label)
    return f"{label}-{hashlib.sha256(json.dumps([path, overrides]).encode()).hexdigest()[:8]}"


def configs_for(mutant: Mutant | None, only: list[str] | None = None) -> list[str]:
    fams = families_for(mutant) if mutant is not None else None
    return [c[0] for c in CONFIGS if (fams is None or c[1] in fams) and (not only or c[0] in only)]


# ====================================================================== worker (inside a copy)
def _worker(args: argparse.Namespace) -> None:
    """Run the gate on each config in a fresh process whose code is the (mutated) copy at ROOT."""
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from dppo.parity import engine as parity
    from shared.precision import compute_dtype
    from shared.settings import load_settings

    captured: dict[str, Any] = {}
    original_quantities, original_lr_values = parity._Bench.quantities, parity.lr_values

    def quantities(self: Any, seed: int) -> Any:
        q = original_quantities(self, seed)
        captured[np.dtype(compute_dtype()).name] = q
        return q

    def lr_values(*a: Any, **k: Any) -> Any:
        v = original_lr_values(*a, **k)
        captured.setdefault("lr", []).append(v)
        return v

    parity._Bench.quantities, parity.lr_values = quantities, lr_values
    side = 0 if args.side == "torch" else 1
    baseline = Path(args.baseline) if args.baseline else None
    records = []
    for label in args.configs.split(","):
        _, _, path, overrides, _ = next(c for c in CONFIGS if c[0] == label)
        captured.clear()
        start = time.perf_counter()
        rec: dict[str, Any] = {"config": label, "key": config_key(label)}
        try:
            report = parity.TwinBench(load_settings(path, overrides), BATCH).report(SEED)
        except Exception as e:  # noqa: BLE001 - a crash of the gate is a result
            rec.update(status="crashed", error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300],
                       traceback=traceback.format_exc()[-1500:])
        else:
            failures = sorted(report.failures, key=lambda r: -r.margin)
            rec.update(status="caught" if failures else "passed", checks=len(report.rows),
                       failures=[{"kind": r.kind, "section": r.section, "name": r.name,
                                  "margin": _clean(r.margin)} for r in failures[:8]],
                       num_failures=len(failures), worst_margin=_clean(report.worst.margin),
                       worst_check=f"{report.worst.section} {report.worst.name}")
            out = {p: {k: (np.asarray(v[0], np.float64), np.asarray(v[1], np.float64))
                       for k, v in captured[p].items()} for p in ("float32", "float64")}
            out["lr"] = [{k: np.asarray(v, np.float64) for k, v in t.items()} for t in captured.get("lr", [])]
            if args.save_baseline:
                Path(args.save_baseline, f"{config_key(label)}.pkl").write_bytes(pickle.dumps(out))
            base = _baseline(baseline, label)
            if base is not None:
                rec["change"] = _change(base, out, side, "tf" if side else "torch")
        rec["seconds"] = round(time.perf_counter() - start, 1)
        records.append(rec)
        print(json.dumps({k: rec.get(k) for k in ("config", "status", "worst_margin", "seconds")}), flush=True)
        if rec["status"] == "caught" and (rec["worst_margin"] == "inf" or rec["worst_margin"] > STOP_MARGIN):
            break
    Path(args.result).write_text(json.dumps(records))


def _baseline(path: Path | None, label: str) -> dict[str, Any] | None:
    """The unmutated outputs of one config (path: the folder of baseline pickles)."""
    if path is None:
        return None
    f = path / f"{config_key(label)}.pkl"
    return pickle.loads(f.read_bytes()) if f.exists() else None


def _change(base: dict[str, Any], out: dict[str, Any], side: int, lr_key: str) -> dict[str, Any]:
    """Largest relative change of the mutated twin's quantities against the unmutated baseline."""
    import numpy as np

    result: dict[str, Any] = {}
    for prec in ("float64", "float32"):
        worst, where = 0.0, ""
        for key in set(base[prec]) | set(out[prec]):
            if key not in base[prec] or key not in out[prec]:
                worst, where = math.inf, f"{key[0]} {key[1]} (missing)"
                break
            b, o = base[prec][key][side], out[prec][key][side]
            if b.shape != o.shape:
                worst, where = math.inf, f"{key[0]} {key[1]} (shape)"
                break
            scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-300)
            same_nonfinite = np.array_equal(np.isfinite(b), np.isfinite(o)) and np.array_equal(
                b[~np.isfinite(b)], o[~np.isfinite(o)], equal_nan=True)
            d = float(np.max(np.abs(b - o), initial=0.0, where=np.isfinite(b) & np.isfinite(o))) / scale \
                if same_nonfinite else math.inf
            if d > worst:
                worst, where = d, f"{key[0]} {key[1]}"
        result[prec] = {"rel": _clean(worst), "where": where}
    lr_rel = 0.0
    for tb, to in zip(base["lr"], out["lr"]):
        b, o = tb[lr_key], to[lr_key]
        lr_rel = max(lr_rel, math.inf if b.shape != o.shape else float(np.max(np.abs(b - o), initial=0.0))
                     / max(float(np.max(np.abs(b), initial=0.0)), 1e-300))
    result["lr"] = {"rel": _clean(lr_rel)}
    result["changed"] = bool(_num(result["float64"]["rel"]) > CHANGE_RTOL["float64"]
                             or _num(result["float32"]["rel"]) > CHANGE_RTOL["float32"]
                             or lr_rel > CHANGE_RTOL["float64"])
    return result


def _clean(x: float) -> float | str:
    return x if math.isfinite(x) else "inf"


def _num(x: float | str) -> float:
    return math.inf if x == "inf" else float(x)


# ====================================================================== driver
def _source_hash() -> str:
    """Hash of the code a baseline depends on (not of scripts/parity: editing the catalogue keeps it)."""
    h = hashlib.sha256()
    for d in COPY[:-1]:
        for p in sorted((ROOT / d).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".yaml"):
                h.update(str(p.relative_to(ROOT)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _copy_tree(dest: Path) -> None:
    for d in COPY:
        shutil.copytree(ROOT / d, dest / d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def check_catalogue() -> list[str]:
    """Problems with the catalogue: snippets that do not occur exactly once, duplicate ids."""
    problems = []
    ids = [m.id for m in CATALOGUE]
    problems += [f"duplicate id {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for m in CATALOGUE:
        if not m.file.startswith(("core_torch/", "core_tf/")):
            problems.append(f"{m.id}: {m.file} is not a twin's file")
            continue
        n = (ROOT / m.file).read_text().count(m.old)
        if n != 1:
            problems.append(f"{m.id}: snippet occurs {n} times in {m.file}: {m.old!r}")
        if m.old == m.new:
            problems.append(f"{m.id}: the new snippet equals the old one")
    return problems


def _apply(tree: Path, m: Mutant) -> None:
    path = tree / m.file
    text = path.read_text()
    if text.count(m.old) != 1:
        raise SystemExit(f"mutant {m.id}: snippet occurs {text.count(m.old)} times in {m.file}")
    path.write_text(text.replace(m.old, m.new))


def _run_worker(tree: Path, side: str, configs: list[str], baseline: Path | None, save_baseline: Path | None,
                timeout: float, xla_cache: Path) -> tuple[list[dict[str, Any]], str | None]:
    result = tree / "worker_result.json"
    cmd = [sys.executable, "scripts/parity/mutants.py", "--worker", "--side", side, "--configs", ",".join(configs),
           "--result", str(result)]
    if baseline is not None:
        cmd += ["--baseline", str(baseline)]
    if save_baseline is not None:
        cmd += ["--save-baseline", str(save_baseline)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1",
           "TF_XLA_FLAGS": f"--tf_xla_persistent_cache_directory={xla_cache}", "PYTHONHASHSEED": "0"}
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], f"timeout after {timeout:.0f} s"
    if proc.returncode != 0 or not result.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return [], f"worker exit {proc.returncode}: {' | '.join(tail)}"[:500]
    return json.loads(result.read_text()), None


def classify(records: list[dict[str, Any]], error: str | None, configs: list[str] | None = None) -> dict[str, Any]:
    """A mutant's verdict from its per-config records (restricted to `configs` when given)."""
    rs = [r for r in records if configs is None or r["config"] in configs]
    caught = [r for r in rs if r["status"] == "caught"]
    crashed = [r for r in rs if r["status"] == "crashed"]
    changed = any(r.get("change", {}).get("changed") for r in rs) or bool(caught)
    if caught:
        best = max(caught, key=lambda r: _num(r["worst_margin"]))
        return {"verdict": "caught", "changed": True, "margin": best["worst_margin"],
                "by": f"{best['config']}: {best['failures'][0]['kind']} {best['failures'][0]['section']} "
                      f"{best['failures'][0]['name']}" if best["failures"] else best["config"]}
    if crashed or (error and not records):
        return {"verdict": "crashed", "changed": True, "margin": None,
                "by": f"{crashed[0]['config']}: {crashed[0]['error']}" if crashed else error}
    if not rs:
        return {"verdict": "not run", "changed": False, "margin": None, "by": ""}
    if changed:
        where = max((r for r in rs if r.get("change", {}).get("changed")),
                    key=lambda r: (_num(r["change"]["float64"]["rel"]), _num(r["change"]["float32"]["rel"])))
        c = where["change"]
        return {"verdict": "survived", "changed": True, "margin": max(_num(r["worst_margin"]) for r in rs),
                "by": f"{where['config']}: changed by {_num(c['float64']['rel']):.2g} in float64 "
                      f"({c['float64']['where'] or '-'}), {_num(c['float32']['rel']):.2g} in float32 "
                      f"({c['float32']['where'] or '-'})"}
    return {"verdict": "equivalent", "changed": False, "margin": max(_num(r["worst_margin"]) for r in rs), "by": ""}


def _settled(record: dict[str, Any]) -> bool:
    """The mutant's run stopped at a config that caught it with margin > STOP_MARGIN: more configs
    cannot change its verdict."""
    return record["verdict"] == "caught" and _num(record["margin"]) > STOP_MARGIN


def run(args: argparse.Namespace) -> None:
    problems = check_catalogue()
    if problems:
        raise SystemExit("catalogue out of date:\n  " + "\n  ".join(problems))
    mutants = [m for m in CATALOGUE if not args.only or m.id in args.only]
    if args.only and len(mutants) != len(set(args.only)):
        raise SystemExit(f"unknown mutant id(s): {sorted(set(args.only) - {m.id for m in mutants})}")
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.exists() else {"mutants": {}}
    src = _source_hash()
    if results.get("source") not in (None, src):
        print(f"note: {out} holds records made from other sources ({results['source']}); rerun with --redo "
              f"to remake them from {src}", file=sys.stderr)
    results["source"] = src
    xla_cache = Path(args.xla_cache)
    xla_cache.mkdir(parents=True, exist_ok=True)
    # the unmutated outputs, one pickle per config, made once per source hash
    base_dir = out.parent / f"{out.stem}.baseline-{src}"
    base_dir.mkdir(exist_ok=True)
    missing = [c for c in configs_for(None, args.config) if not (base_dir / f"{config_key(c)}.pkl").exists()]
    if missing:
        print(f"baseline: unmutated code on {', '.join(missing)} ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="dppo_mut_") as tmp:
            _copy_tree(Path(tmp))
            recs, err = _run_worker(Path(tmp), "torch", missing, None, base_dir, args.timeout, xla_cache)
        bad = [r for r in recs if r["status"] != "passed"]
        if err or bad:
            for c in missing:
                (base_dir / f"{config_key(c)}.pkl").unlink(missing_ok=True)
            raise SystemExit(f"the unmutated code does not pass the gate: {err or bad}")
        results["baseline"] = [r for r in results.get("baseline", []) if r["config"] not in missing] + recs
        out.write_text(json.dumps(results, indent=1))
    for m in mutants:
        configs = configs_for(m, args.config)
        old = results["mutants"].get(m.id)
        if old is not None and not args.redo:
            old = {**old, "records": [r for r in old["records"]  # records of configs edited since are redone
                                      if r["config"] in configs and r.get("key") == config_key(r["config"])]}
            done = {r["config"] for r in old["records"]}
            old.update(classify(old["records"], old["error"]))
            if _settled(old) or old["error"] or done >= set(configs):
                continue
            todo = [c for c in configs if c not in done]  # configs added since: run only those
        else:
            old, todo = None, configs
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"dppo_mut_{m.id}_") as tmp:
            _copy_tree(Path(tmp))
            _apply(Path(tmp), m)
            recs, err = _run_worker(Path(tmp), m.twin, todo, base_dir, None, args.timeout, xla_cache)
        if old is not None:
            recs = sorted([r for r in old["records"] if r["config"] in configs] + recs,
                          key=lambda r: configs.index(r["config"]))
        record = {"id": m.id, "file": m.file, "twin": m.twin, "kind": m.kind, "description": m.description,
                  "configs": configs, "records": recs, "error": err,
                  "seconds": round(time.perf_counter() - start + (old["seconds"] if old else 0.0), 1),
                  **classify(recs, err)}
        results["mutants"][m.id] = record
        out.write_text(json.dumps(results, indent=1))
        print(_row(record), flush=True)
    print(summary(results))


# ====================================================================== reporting
def _row(r: dict[str, Any]) -> str:
    margin = r.get("margin")
    m = "" if margin is None else (f"{_num(margin):.3g}" if _num(margin) != math.inf else "inf")
    return (f"{r['id']:<4} {r['file']:<28} {r['description'][:58]:<58} {'yes' if r['changed'] else 'no':<3} "
            f"{r['verdict']:<10} {m:>9}  {r['by'][:110]}")


def summary(results: dict[str, Any]) -> str:
    rs = [results["mutants"][k] for k in sorted(results["mutants"])]
    rs = [{**r, **classify(r["records"], r["error"])} for r in rs]  # verdicts from the records, as defined now
    lines = [f"{'id':<4} {'file':<28} {'description':<58} {'chg':<3} {'verdict':<10} {'margin':>9}  caught by / why",
             *[_row(r) for r in rs], ""]
    base_labels = [c[0] for c in CONFIGS if not c[4]]
    for title, configs in (("all configs", None), ("the brief's four configs only", base_labels)):
        vs = [classify(r["records"], r["error"], configs) for r in rs]
        n = {k: sum(v["verdict"] == k for v in vs) for k in ("caught", "crashed", "survived", "equivalent")}
        changing = n["caught"] + n["crashed"] + n["survived"]
        rate = (n["caught"] + n["crashed"]) / changing if changing else math.nan
        lines.append(f"{title}: {len(rs)} mutants, {changing} change an output: caught {n['caught']}, "
                     f"crashed {n['crashed']}, survived {n['survived']}; equivalent {n['equivalent']}; "
                     f"catch rate {rate:.1%} ({n['caught'] + n['crashed']}/{changing})")
    caught = [r for r in rs if r["verdict"] == "caught"]
    for k in (1, 10, 100, 1e3, 1e6):
        lines.append(f"  caught with K x {k:g} (margin > {k:g}): {sum(_num(r['margin']) > k for r in caught)}"
                     f"/{len(caught)}")
    survivors = [r["id"] for r in rs if r["verdict"] == "survived"]
    lines.append(f"survivors: {', '.join(survivors) or 'none'}")
    secs = [r["seconds"] for r in rs]
    if secs:
        lines.append(f"time per mutant: mean {sum(secs) / len(secs):.0f} s, max {max(secs):.0f} s, "
                     f"total {sum(secs) / 60:.0f} min")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "mutants.json", help="results (JSON)")
    p.add_argument("--only", action="append", help="only this mutant id (repeatable)")
    p.add_argument("--config", action="append", help="only this config label (repeatable)")
    p.add_argument("--redo", action="store_true", help="rerun mutants already in --out")
    p.add_argument("--list", action="store_true", help="list the catalogue (each snippet checked) and exit")
    p.add_argument("--summary", type=Path, help="print the table of an earlier --out and exit")
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds per mutant (all its configs)")
    p.add_argument("--xla-cache", default=str(Path(tempfile.gettempdir()) / "dppo_mutants_xla_cache"),
                   help="XLA's persistent compilation cache (shared by the workers; safe: keyed by the program)")
    # internal: the per-mutant worker
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--side", help=argparse.SUPPRESS)
    p.add_argument("--configs", help=argparse.SUPPRESS)
    p.add_argument("--baseline", help=argparse.SUPPRESS)
    p.add_argument("--save-baseline", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        _worker(args)
    elif args.list:
        problems = check_catalogue()
        for m in CATALOGUE:
            print(f"{m.id:<4} {m.twin:<5} {m.kind:<16} {m.file:<28} {m.description}  [{', '.join(configs_for(m))}]")
        print(f"{len(CATALOGUE)} mutants ({sum(m.twin == 'torch' for m in CATALOGUE)} torch, "
              f"{sum(m.twin == 'tf' for m in CATALOGUE)} tf)")
        if problems:
            raise SystemExit("catalogue out of date:\n  " + "\n  ".join(problems))
    elif args.summary:
        print(summary(json.loads(args.summary.read_text())))
    else:
        run(args)


if __name__ == "__main__":
    main()
