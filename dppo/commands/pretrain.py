"""`dppo pretrain`: pre-train a diffusion or Gaussian policy on demonstrations."""

from __future__ import annotations

import argparse

from dppo.commands.arguments import BACKEND_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pre-train a diffusion or Gaussian policy on demonstrations")
    p.add_argument("--config", required=True, help="YAML pretrain config")
    p.add_argument("--backend", required=True, choices=("torch", "tf"), help=BACKEND_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", help="key=value config overrides (e.g. resume=PATH)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dppo.training.pretrain import run_pretrain
    from shared.settings import load_settings

    summary = run_pretrain(load_settings(args.config, args.overrides, ("pretrain",)), args.backend, quiet=args.quiet)
    print(f"pretrained {summary['epochs']} epochs on {args.backend}: final loss {summary['final_loss']:.5f}; "
          f"checkpoint {summary['checkpoint']}; logs in {summary['logdir']}")
    return 0
