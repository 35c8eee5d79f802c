"""`dppo bench --job CONFIG`: a few fine-tuning iterations of a real config, run by the same driver as `dppo
finetune` (in a temporary logdir), and where their time went: the phases the loop and the trainers mark
(dppo/runs/phases.py: action sampling, env stepping, log-probabilities and values, GAE and returns, replay
buffer, update, metrics and logging, checkpoint), the rest of the wall time as unmarked, and environment steps
per second overall, and the peak resident memory of the process and of its largest child (the env workers, when
the envs run in processes). The first iterations (TF traces, first calls) are left out as warm-up."""

from __future__ import annotations

import dataclasses
import resource
import sys
import tempfile
from typing import Any

from dppo.runs.paths import write_json
from dppo.runs.phases import profiling
from dppo.training.finetune import run_finetune
from shared.settings import load_settings


def peak_memory_mib() -> dict[str, float]:
    """Peak resident memory (MiB) since the process started: of this process, and of the largest of its children
    that have ended (getrusage's maxrss; the env workers once the vector env is closed; 0 when there were none)."""
    unit = 1 if sys.platform == "darwin" else 1024  # maxrss: bytes on macOS, KiB on Linux
    return {"process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2**20,
            "largest_child": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * unit / 2**20}


def profile_job(config: str, backend: str, iterations: int, warmup: int, overrides: list[str]) -> dict[str, Any]:
    """Run warmup + iterations iterations of `config` (no checkpoint but the last, metrics kept) and return
    the profile of the last `iterations`."""
    with tempfile.TemporaryDirectory(prefix="dppo-bench-job-") as logdir:
        total = warmup + iterations
        cfg = load_settings(config, [*overrides, f"logdir={logdir}", f"train.n_train_itr={total}",
                                     f"train.save_model_freq={total + 1}"], ("finetune",))
        cfg = dataclasses.replace(cfg, wandb=None)
        with profiling(warmup) as prof:
            run_finetune(cfg, backend, quiet=True)
    n_envs = cfg.env.n_envs
    steps = prof.counts.get("policy steps", 0) * n_envs * cfg.act_steps
    phases = [{"phase": name, "seconds": sec, "ms_per_iteration": 1000 * sec / max(prof.iterations, 1),
               "share": sec / prof.wall if prof.wall else 0.0, "calls": prof.calls[name]}
              for name, sec in prof.seconds.items()]
    unmarked = max(prof.wall - prof.total(), 0.0)
    phases.append({"phase": "unmarked (loop bookkeeping)", "seconds": unmarked,
                   "ms_per_iteration": 1000 * unmarked / max(prof.iterations, 1),
                   "share": unmarked / prof.wall if prof.wall else 0.0, "calls": prof.iterations})
    return {"config": config, "backend": backend, "algorithm": cfg.algorithm, "iterations": prof.iterations,
            "warmup": warmup, "wall_seconds": prof.wall, "env_steps": steps,
            "env_steps_per_second": steps / prof.wall if prof.wall else 0.0, "n_envs": n_envs, "phases": phases,
            "beside": [{"phase": name, "seconds": sec, "ms_per_iteration": 1000 * sec / max(prof.iterations, 1)}
                       for name, sec in prof.beside.items()],
            "env_overlap": cfg.env.overlap,
            "overlap": overlap_bound(prof.seconds, prof.wall, prof.beside), "peak_memory_mib": peak_memory_mib()}


# The learner's own work; env stepping is the other side. Metrics, checkpoints and the loop's bookkeeping count
# against the bound but to neither side.
POLICY_PHASES = ("action sampling", "log-probabilities and values", "GAE and returns", "replay buffer", "update",
                 "training (unmarked)")
OVERLAP_TARGET = 1.2


def overlap_bound(seconds: dict[str, float], wall: float, beside: dict[str, float] | None = None) -> dict[str, float]:
    """Issue 25's target for an iteration: wall <= 1.2 max(env stepping, policy work), reachable only when the
    two run beside each other (env.overlap). ratio = wall / max(env, policy); 1.0 would be perfect overlap, and
    with the two one after the other it is (env + policy + rest) / max(env, policy), at least 1 + min / max.
    With env.overlap the env time is the workers' own stepping time (`beside`), the loop only waiting for part
    of it."""
    env = max(seconds.get("env stepping", 0.0), (beside or {}).get("env stepping in workers", 0.0))
    policy = sum(seconds.get(name, 0.0) for name in POLICY_PHASES)
    longer = max(env, policy)
    return {"env_seconds": env, "policy_seconds": policy, "ratio": wall / longer if longer else 0.0,
            "target": OVERLAP_TARGET}


def format_profile(p: dict[str, Any]) -> str:
    head = (f"{p['config']} [{p['backend']}, {p['algorithm']}]: {p['iterations']} iterations after {p['warmup']} "
            f"warm-up, {p['wall_seconds']:.2f} s, {p['env_steps']} env steps ({p['n_envs']} envs), "
            f"{p['env_steps_per_second']:.0f} env steps/s")
    rows = [f"  {'phase':<32}{'ms/itr':>10}{'share':>8}{'calls':>8}"]
    for r in sorted(p["phases"], key=lambda r: -r["seconds"]):
        rows.append(f"  {r['phase']:<32}{r['ms_per_iteration']:>10.1f}{100 * r['share']:>7.1f}%{r['calls']:>8}")
    for r in p.get("beside", []):
        rows.append(f"  {r['phase'] + ' (beside)':<32}{r['ms_per_iteration']:>10.1f}")
    o = p["overlap"]
    verdict = "met" if o["ratio"] <= o["target"] else f"missed by {o['ratio'] / o['target']:.2f}x"
    how = ("env.overlap: one half of the envs steps while the policy samples for the other" if p.get("env_overlap")
           else "the loop steps the envs between the policy's calls; env.overlap=true steps them beside")
    rows.append(f"  iteration / max(env stepping {o['env_seconds']:.2f} s, policy work {o['policy_seconds']:.2f} s) = "
                f"{o['ratio']:.2f}x (target {o['target']}x: {verdict}; {how})")
    mem = p["peak_memory_mib"]
    children = f"largest child process (env worker) {mem['largest_child']:.0f} MiB" if mem["largest_child"] else \
        "no child processes (envs in this process)"
    rows.append(f"  peak resident memory since start: this process {mem['process']:.0f} MiB, {children}")
    return "\n".join([head, *rows])


def main_job(config: str, backend: str, iterations: int, warmup: int, overrides: list[str],
             json_path: str | None) -> dict[str, Any]:
    result = profile_job(config, backend, iterations, warmup, overrides)
    print(format_profile(result))
    if json_path:
        write_json(json_path, result)
    return result
