"""`dppo finetune`: fine-tune a policy in its environment with the config's algorithm."""

from __future__ import annotations

import argparse
import sys

from dppo.commands.arguments import BACKEND_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune",
                       help="fine-tune a policy in its gymnasium MuJoCo environment with the config's algorithm")
    p.add_argument("--config", required=True, help="YAML fine-tuning config")
    p.add_argument("--backend", required=True, choices=("torch", "tf"), help=BACKEND_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", help="key=value config overrides (e.g. base_policy_path=CKPT)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dppo.training.finetune import run_finetune
    from shared.settings import load_settings

    cfg = load_settings(args.config, args.overrides, ("finetune",))
    if cfg.is_diffusion and not cfg.base_policy_path:
        print("warning: no base_policy_path; fine-tuning a randomly initialised diffusion policy", file=sys.stderr)
    summary = run_finetune(cfg, args.backend, quiet=args.quiet)
    last = summary["last"]
    print(f"fine-tuned {summary['iterations']} iterations on {args.backend}: last avg episode reward "
          f"{last.get('avg_episode_reward')}; checkpoint {summary['checkpoint']}; logs in {summary['logdir']}")
    return 0
