"""`dppo eval`: a policy's return over whole episodes, deterministic sampling."""

from __future__ import annotations

import argparse

from dppo.commands.arguments import BACKEND_HELP, positive_int, seed
from dppo.runs.paths import check_output_file, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a policy (deterministic sampling) over whole episodes")
    p.add_argument("--config", required=True, help="YAML fine-tuning config or upstream eval config")
    p.add_argument("--backend", required=True, choices=("torch", "tf"), help=BACKEND_HELP)
    p.add_argument("--episodes", type=positive_int, default=10,
                   help="episodes to run, one env each, all at once (default 10)")
    p.add_argument("--seed", type=seed, default=10_000,
                   help="env i is reset with seed SEED+i; the sampling noise is seeded from it too (default 10000)")
    p.add_argument("--json", help="write the result (returns, means, D4RL scores) here")
    p.add_argument("overrides", nargs="*", help="key=value overrides (base_policy_path=CKPT)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dppo.training.evaluate import evaluate
    from shared.settings import load_settings

    check_output_file(args.json, "--json")
    cfg = load_settings(args.config, args.overrides, ("finetune", "eval"))
    result = evaluate(cfg, args.backend, args.episodes, args.seed)
    score = "" if result["d4rl_score_mean"] is None else (
        f"; D4RL score {result['d4rl_score_mean']:.1f} +- {result['d4rl_score_std']:.1f}")
    success = "" if result["success_rate"] is None else f"; success rate {result['success_rate']:.3f}"
    print(f"{args.backend}: return {result['return_mean']:.1f} +- {result['return_std']:.1f} over "
          f"{result['episodes']} episodes{score}{success}")
    if args.json:
        write_json(args.json, result)
    return 0
