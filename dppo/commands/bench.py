"""`dppo bench`: sampling, PPO update, pre-training step and serving timings; with --upstream, the same ops
against upstream's own classes; with --job, where a fine-tuning config's iterations spend their time."""

from __future__ import annotations

import argparse
from pathlib import Path

from dppo.commands.arguments import positive_int
from dppo.runs.paths import check_output_file
from shared.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark sampling, PPO update, pretraining step and serving")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--repeats", type=positive_int, default=20, help="timed calls per measurement (default 20)")
    p.add_argument("--job", metavar="CONFIG",
                   help="profile a few fine-tuning iterations of this config end to end instead: time per phase "
                        "(env stepping, action sampling, scoring, GAE, update, logging, checkpoint), env steps/s")
    p.add_argument("--backend", choices=("torch", "tf"), default="torch", help="with --job: the framework")
    p.add_argument("--iterations", type=positive_int, default=5, help="with --job: iterations profiled (default 5)")
    p.add_argument("--warmup", type=positive_int, default=2,
                   help="with --job: first iterations left out (traces, first calls; default 2)")
    p.add_argument("--upstream", type=Path, metavar="PATH",
                   help="an irom-lab/dppo checkout at the pinned commit: time upstream's own classes beside both "
                        "frameworks on the same inputs and weights and print the ratios against the targets")
    p.add_argument("--allow-other-commit", action="store_true",
                   help="with --upstream: accept a checkout at another commit (a WARNING line says so)")
    p.add_argument("overrides", nargs="*", help="with --job: key=value overrides of the config")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_output_file(args.json, "--json")
    if args.job:
        from dppo.bench.job import main_job

        main_job(args.job, args.backend, args.iterations, args.warmup, args.overrides, args.json)
        return 0
    if args.overrides:
        raise ConfigError("key=value overrides go with --job CONFIG")
    if args.upstream is not None:
        from dppo.bench.upstream import main_upstream_bench

        main_upstream_bench(args.upstream, args.allow_other_commit, args.json, args.repeats)
        return 0
    if args.allow_other_commit:
        raise ConfigError("--allow-other-commit goes with --upstream PATH")
    from dppo.bench.kernels import main_bench

    main_bench(args.json, args.repeats)
    print("ratios against upstream's own classes need --upstream PATH (an irom-lab/dppo checkout); "
          "the eager reference above is this project's re-implementation")
    return 0
