"""`dppo data convert`: a D4RL hdf5 file to the DPPO train.npz and normalization.npz; `dppo data collect`: a
Gaussian teacher's rollouts; `dppo data robomimic`: scripted robomimic demonstrations (Lift, Can, Square,
Transport)."""

from __future__ import annotations

import argparse

from dppo.commands.arguments import positive_int, seed
from dppo.runs.paths import check_output_dir
from shared.data.d4rl import convert_d4rl_hdf5, locate_d4rl_dataset
from shared.data.robomimic_demos import DEMO_TASKS, make_demos


def _cmd_data_convert(args: argparse.Namespace) -> int:
    check_output_dir(args.out, "--out")
    source = args.d4rl if args.d4rl is not None else locate_d4rl_dataset(args.d4rl_name)
    summary = convert_d4rl_hdf5(source, args.out, drop_zero_reward_episodes=not args.keep_zero_reward_episodes)
    print(
        f"converted {source}: {summary.num_episodes} episodes, {summary.num_transitions} transitions "
        f"(obs_dim {summary.obs_dim}, action_dim {summary.action_dim})"
    )
    if summary.skipped_zero_reward_episodes or summary.dropped_trailing_steps:
        print(
            f"skipped {summary.skipped_zero_reward_episodes} episodes with return <= 0, "
            f"dropped {summary.dropped_trailing_steps} steps of an unfinished last episode"
        )
    print(
        f"episode return: mean {summary.return_mean:.4g} std {summary.return_std:.4g} "
        f"min {summary.return_min:.4g} max {summary.return_max:.4g}"
    )
    for path in summary.paths:
        print(f"wrote {path}")
    return 0


def _cmd_data_collect(args: argparse.Namespace) -> int:
    from dppo.training.collect import collect_dataset
    from shared.settings import load_settings

    check_output_dir(args.out, "--out")
    cfg = load_settings(args.config, args.overrides, ("finetune",))
    stats = collect_dataset(cfg, args.teacher, args.out, args.transitions, args.backend, args.seed)
    print(f"collected {stats['episodes']} episodes, {stats['transitions']} transitions: return mean "
          f"{stats['return_mean']:.1f} std {stats['return_std']:.1f} (D4RL score {stats['d4rl_score_mean']:.1f}); "
          f"wrote {args.out}/train.npz, normalization.npz, stats.json")
    return 0


def _cmd_data_robomimic(args: argparse.Namespace) -> int:

    check_output_dir(args.out, "--out")
    report = (lambda line: print(line, flush=True)) if args.verbose else None
    summary = make_demos(args.task, args.demos, args.seed, args.out, progress=report)
    lengths = summary.lengths
    print(f"{summary.task}: kept {summary.demos} of {summary.attempts} attempts (maker success "
          f"{100 * summary.success_rate:.1f}%), {int(lengths.sum())} transitions, episode length mean "
          f"{lengths.mean():.1f} min {lengths.min()} max {lengths.max()}, {summary.seconds:.0f} s")
    for path in summary.paths:
        print(f"wrote {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `data convert` to the dppo command's sub-commands."""
    data = subparsers.add_parser("data", help="dataset tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("convert", help="convert a D4RL hdf5 dataset to train.npz and normalization.npz")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--d4rl", metavar="FILE.hdf5", help="D4RL-layout hdf5 file")
    source.add_argument(
        "--d4rl-name", metavar="NAME", help="dataset name (e.g. hopper-medium-v2) already downloaded by d4rl"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--keep-zero-reward-episodes", action="store_true", help="keep episodes whose return is not > 0")
    p.set_defaults(run=_cmd_data_convert)

    p = data_sub.add_parser("collect", help="roll out a trained Gaussian PPO teacher into a DPPO dataset")
    p.add_argument("--config", required=True, help="the teacher's fine-tuning config (Gaussian actor)")
    p.add_argument("--teacher", required=True, help="the teacher's fine-tuning checkpoint")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (train.npz, normalization.npz, stats.json)")
    p.add_argument("--transitions", type=positive_int, default=150_000,
                   help="collect complete episodes until at least this many steps (default 150000)")
    p.add_argument("--backend", choices=("torch", "tf"), default="torch",
                   help="framework that runs the teacher (default torch)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the env resets and action noise (default 0)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the teacher config")
    p.set_defaults(run=_cmd_data_collect)

    p = data_sub.add_parser("robomimic", help="scripted robomimic demonstrations (Lift, Can, Square, Transport) in "
                            "upstream's processed layout")
    p.add_argument("--task", required=True, choices=DEMO_TASKS, help="robosuite task")
    p.add_argument("--demos", type=positive_int, default=100, help="successful episodes to keep (default 100)")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed of the env model, the resets and the makers' noise (default 0)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (train.npz, normalization.npz, stats.json)")
    p.add_argument("--verbose", action="store_true", help="print a line per attempt")
    p.set_defaults(run=_cmd_data_robomimic)
