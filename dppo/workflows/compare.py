"""`dppo compare`: several fine-tuning configs on one task, each for every backend and seed, run by the
fine-tuning driver of `dppo finetune` (dppo.training.finetune.run_finetune) into OUT/<config>/<backend>/seed<k>/,
the final policies evaluated over whole episodes, and the curves and table written by dppo.workflows.compare_report.

Runs go one after the other in this process, not one subprocess each: a subprocess spends 5-8 s
importing torch and TensorFlow (the torch backend imports TF through TensorBoard) before its first
step, which a comparison of tiny runs (its tests) cannot afford, and what isolation would buy is
already there: the driver sets torch's threads itself before every rollout and update, each run has
its own agent, envs and logdir lock, a run that diverges (exit 3) or whose environment fails (exit 4)
is recorded as failed while the others go on, and a crash of the whole process loses nothing that
a rerun does not pick up, since every run resumes from its logdir.

Reuse follows the driver's resume: a run whose last iteration's checkpoint and metrics are in its
logdir is read, not started; an unfinished one resumes from its latest checkpoint (so a larger
train.n_train_itr extends finished runs); a final evaluation is kept while it names the final
checkpoint and the episode count asked for. A run directory is continued whatever config it was
started with: after changing a config or an override, use another --out.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dppo.runs.files import RunDir, writing
from dppo.runs.lock import LogdirLock
from dppo.training.evaluate import evaluate
from dppo.training.finetune import run_finetune
from dppo.workflows.compare_report import run_summary, write_report
from shared.checkpoint import atomic_write
from shared.config.loading import load_config
from shared.errors import ConfigError, EnvironmentFailedError, TrainingDivergedError, UserError
from shared.settings import config_kind, finetune_algorithm, read_config

FINAL_EVAL = "final_eval.json"
EVAL_SEED = 10_000  # `dppo eval`'s default: every run's final policy is evaluated from the same env seeds


@dataclass(frozen=True)
class CompareRun:
    """One (config, backend, seed) of a comparison: its typed config and how to rebuild it."""

    name: str  # the config file's name without .yaml: OUT/<name>/, the table's config column
    algorithm: str  # display name (legend, table)
    path: str
    overrides: tuple[str, ...]  # everything passed to load_config, seed= and logdir= included
    backend: str
    seed: int
    cfg: Any  # a fine-tuning config (FinetuneConfig, RWRConfig, AWRConfig, ...)

    @property
    def logdir(self) -> Path:
        return Path(self.cfg.logdir)

    @property
    def n_train_itr(self) -> int:
        return self.cfg.train.n_train_itr

    @property
    def label(self) -> str:
        return f"{self.name}/{self.backend}/seed{self.seed}"


def algorithm_name(cfg: Any) -> str:
    """The display name of a fine-tuning config's algorithm: DPPO or Gaussian PPO for PPO, else its
    name upper-cased (RWR, AWR, ...)."""
    algorithm = finetune_algorithm(cfg.raw)
    if algorithm == "ppo":
        return "DPPO" if cfg.is_diffusion else "Gaussian PPO"
    return algorithm.upper()


def config_overrides(overrides: list[str], names: list[str]) -> dict[str, list[str]]:
    """{name: its overrides, in the order given}: `NAME:key=value` applies to the config whose file is
    NAME.yaml only, `key=value` to all; a later override of a key wins, whichever kind it is."""
    per_config: dict[str, list[str]] = {n: [] for n in names}
    for item in overrides:
        if ":" not in item.split("=", 1)[0]:
            for name in names:
                per_config[name].append(item)
            continue
        name, rest = item.split(":", 1)
        if name not in per_config:
            raise ConfigError(f"override {item!r} is for config {name!r}, which is not one of the compared "
                              f"configs ({', '.join(names)})")
        per_config[name].append(rest)
    return per_config


def _named(path: str, exc: UserError) -> UserError:
    """The error of one of several configs, naming the file unless its message does."""
    if path in str(exc):
        return exc
    return type(exc)(f"{path}: {exc}") if type(exc) is ConfigError else exc


def _read(path: str, overrides: list[str]) -> Any:
    try:
        raw = load_config(path, overrides)
        kind = config_kind(raw)
        if kind != "finetune":
            raise ConfigError(f"{path} is a {kind} config; dppo compare takes fine-tuning configs")
        return read_config(raw, ("finetune",))
    except ConfigError as exc:
        raise _named(path, exc) from None


def plan_runs(paths: list[str], backends: list[str], seeds: list[int], overrides: list[str],
              out: Path) -> list[CompareRun]:
    """Every (config, backend, seed), each config read with its overrides before any work starts."""
    names = [Path(p).name.removesuffix(".yaml").removesuffix(".yml") for p in paths]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"two configs are named {name!r} ({paths[names.index(name)]} and {paths[i]}); "
                              "their runs would share OUT/" + name)
    own = config_overrides(overrides, names)
    runs, tasks = [], {}
    for path, name in zip(paths, names):
        for backend in backends:
            for seed in dict.fromkeys(seeds):
                given = (*own[name], f"seed={seed}", f"logdir={out / name / backend / f'seed{seed}'}")
                cfg = _read(path, list(given))
                tasks.setdefault(cfg.env_name, path)
                runs.append(CompareRun(name, algorithm_name(cfg), path, given, backend, seed, cfg))
    if len(tasks) > 1:
        (a, pa), (b, pb) = list(tasks.items())[:2]
        raise ConfigError(f"the configs are for different tasks: {pa} runs {a}, {pb} runs {b}; dppo compare "
                          "compares algorithms on one task")
    return runs


def is_finished(run: CompareRun) -> bool:
    """The run's last iteration is in its logdir: its checkpoint and its metrics record."""
    last = run.n_train_itr - 1
    rundir = RunDir(run.logdir)
    return rundir.checkpoint_path(last).is_file() and any(r.get("itr") == last for r in rundir.read_metrics())


def final_evaluation(run: CompareRun, episodes: int) -> dict[str, Any]:
    """`dppo eval` of the run's final checkpoint over `episodes` whole episodes (kept in the logdir)."""
    checkpoint = str(RunDir(run.logdir).checkpoint_path(run.n_train_itr - 1))
    path = run.logdir / FINAL_EVAL
    if path.is_file():
        try:
            kept = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            kept = None
        if isinstance(kept, dict) and kept.get("checkpoint") == checkpoint and kept.get("episodes") == episodes:
            return kept
    cfg = _read(run.path, [*run.overrides, f"base_policy_path={checkpoint}"])
    result = {**evaluate(cfg, run.backend, episodes, EVAL_SEED), "checkpoint": checkpoint, "seed": EVAL_SEED}
    with writing(path):
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2)))
    return result


def run_one(run: CompareRun, eval_episodes: int, quiet: bool) -> dict[str, Any]:
    """Fine-tune (or reuse) one run, evaluate its final policy; its summary for the report."""
    if is_finished(run):
        print(f"[{run.label}] {run.algorithm}: finished run reused")
    else:
        print(f"[{run.label}] {run.algorithm}: fine-tuning {run.n_train_itr} iterations")
        run_finetune(run.cfg, run.backend, quiet)
    final = final_evaluation(run, eval_episodes) if eval_episodes else None
    return run_summary(RunDir(run.logdir).read_metrics(), run.n_train_itr, final)


def run_compare(paths: list[str], backends: list[str], seeds: list[int], overrides: list[str], out: str,
                eval_episodes: int, quiet: bool = False) -> tuple[dict[str, Any], int]:
    """Run every (config, backend, seed), then write OUT/compare.png, results.md and results.json.
    Returns (the report, exit code): 0, or the code of the first run that failed (3 diverged,
    4 environment failed); the others still run and the report covers them."""
    root = Path(out)
    runs = plan_runs(paths, backends, seeds, overrides, root)
    warned = set()
    for run in runs:
        if run.cfg.is_diffusion and not run.cfg.base_policy_path and run.name not in warned:
            warned.add(run.name)
            print(f"warning: {run.path} has no base_policy_path; fine-tuning a randomly initialised diffusion "
                  "policy", file=sys.stderr)
    summaries: list[tuple[CompareRun, dict[str, Any]]] = []
    code = 0
    with LogdirLock(root):  # one comparison per OUT; every run locks its own logdir too
        for run in runs:
            try:
                summary = run_one(run, eval_episodes, quiet)
            except (TrainingDivergedError, EnvironmentFailedError) as exc:
                print(f"[{run.label}] failed: {exc}", file=sys.stderr)
                code = code or exc.exit_code
                summary = {**run_summary(RunDir(run.logdir).read_metrics(), run.n_train_itr, None),
                           "failed": str(exc)}
            summaries.append((run, {"seed": run.seed, **summary}))
        report = write_report(summaries, root, runs[0].cfg.env_name, eval_episodes)
    return report, code
