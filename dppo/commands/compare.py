"""`dppo compare`: several fine-tuning configs on one task, one plot and one table."""

from __future__ import annotations

import argparse

from dppo.commands.arguments import non_negative_int, seed
from dppo.runs.paths import check_output_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="fine-tune with several configs on one task; one reward plot and table")
    p.add_argument("--config", action="append", required=True,
                   help="a fine-tuning YAML (DPPO, Gaussian PPO, RWR, AWR, ...); repeat it, one per algorithm, all "
                        "for the same task")
    p.add_argument("--backend", required=True, choices=("torch", "tf", "both"),
                   help="framework to run every config on, or both (same colour, torch solid, tf dashed)")
    p.add_argument("--out", required=True,
                   help="output directory: runs in OUT/<config>/<backend>/seed<k>/ (finished ones are reused, "
                        "unfinished ones resume), compare.png, results.md, results.json")
    p.add_argument("--seeds", type=seed, nargs="+", default=[0],
                   help="seeds to run each config with (default 0); give overrides before --seeds")
    p.add_argument("--eval-episodes", type=non_negative_int, default=10,
                   help="whole episodes the final policy of each run is evaluated on, deterministically, from env "
                        "seeds 10000+i; 0: use the last evaluation iteration's episodes (default 10)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*",
                   help="key=value overrides for every config (the budget: env.n_envs, train.n_steps, "
                        "train.n_train_itr, train.val_freq, ...), or NAME:key=value for the config NAME.yaml only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dppo.workflows.compare import run_compare
    from dppo.workflows.compare_report import results_markdown

    check_output_dir(args.out, "--out")
    backends = ["torch", "tf"] if args.backend == "both" else [args.backend]
    report, code = run_compare(args.config, backends, args.seeds, args.overrides, args.out, args.eval_episodes,
                               quiet=args.quiet)
    print(results_markdown(report["env_name"], report["rows"], report["eval_episodes"]))
    print(f"wrote {args.out}/compare.png, results.md and results.json")
    return code
