"""`dppo main`: the main job (pre-train, evaluate, fine-tune, evaluate, plot)."""

from __future__ import annotations

import argparse

from dppo.runs.paths import check_output_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("main", help="the main job: pretrain, evaluate, fine-tune, evaluate, plot")
    p.add_argument("--config", default="configs/hopper/main_job.yaml",
                   help="the job's YAML: the two configs, their overrides, the data (default %(default)s)")
    p.add_argument("--backend", choices=("torch", "tf", "both"), default="torch",
                   help="framework to run, or both one after the other (default torch)")
    p.add_argument("--workdir", default="runs/main",
                   help="where runs, the SavedModel, results.json and the plot go (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dppo.workflows.main_job import run_main_job

    check_output_dir(args.workdir, "--workdir")
    backends = ["torch", "tf"] if args.backend == "both" else [args.backend]
    run_main_job(args.config, backends, args.workdir, quiet=args.quiet)
    return 0
