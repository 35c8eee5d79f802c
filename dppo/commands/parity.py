"""`dppo parity`: the torch and TF twins built from one config, compared by the one error-budget rule."""

from __future__ import annotations

import argparse
import sys

from dppo.commands.arguments import positive_int, seed
from dppo.runs.paths import check_output_file, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parity", help="compare the torch and TF twins built from one config")
    p.add_argument("--config", required=True, help="YAML config (pretrain, finetune or eval)")
    p.add_argument("--json", help="write the per-layer table as JSON here")
    p.add_argument("--seed", type=seed, default=0, help="seed of the shared initialisation and inputs (default 0)")
    p.add_argument("--batch", type=positive_int, default=8, help="rows of the probe batch (default 8)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dppo.parity.engine import run_parity
    from shared.settings import load_settings

    check_output_file(args.json, "--json")
    report = run_parity(load_settings(args.config, args.overrides), seed=args.seed, batch=args.batch)
    print(report.table())
    if args.json:
        write_json(args.json, report.to_json())
        print(f"wrote {args.json}")
    if not report.ok:
        worst = report.worst
        print(f"parity FAILED: {len(report.failures)} of {len(report.rows)} checks past their limit; worst "
              f"{worst.section} {worst.name} (margin {worst.margin:.3g})", file=sys.stderr)
        return 1
    print(f"parity OK (worst margin {report.worst.margin:.3f}: {report.worst.section} {report.worst.name})")
    return 0
