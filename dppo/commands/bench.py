"""`dppo bench`: sampling, PPO update, pre-training step and serving timings."""

from __future__ import annotations

import argparse

from dppo.commands.arguments import positive_int
from dppo.runs.paths import check_output_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark sampling, PPO update, pretraining step and serving")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--repeats", type=positive_int, default=20, help="timed calls per measurement (default 20)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dppo.bench.kernels import main_bench

    check_output_file(args.json, "--json")
    main_bench(args.json, args.repeats)
    return 0
