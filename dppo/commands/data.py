"""`dppo data convert`: a D4RL hdf5 file to the DPPO train.npz and normalization.npz; `dppo data collect`: a
Gaussian teacher's rollouts; `dppo data robomimic`: scripted robomimic demonstrations (Lift, Can, Square,
Transport), with camera frames (`--images`); `dppo data frames`: a PNG grid of the frames an image policy sees."""

from __future__ import annotations

import argparse

from dppo.commands.arguments import positive_int, seed
from dppo.runs.paths import check_output_dir
from shared.data.d4rl import convert_d4rl_hdf5, locate_d4rl_dataset
from shared.data.dataset import load_normalization
from shared.data.envs import EnvSpec
from shared.data.frames import dataset_frames, env_frames, write_grid
from shared.data.rendering import RENDER_QUALITIES
from shared.data.robomimic import TASKS, EnvMeta, RobomimicImageSuite, env_meta_path
from shared.data.robomimic_demos import DEMO_TASKS, make_demos
from shared.data.robomimic_image_demos import proprio_keys
from shared.errors import ConfigError


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
    if args.grid is not None and not args.images:
        raise ConfigError("--grid shows camera frames: it needs --images")
    report = (lambda line: print(line, flush=True)) if args.verbose else None
    if args.images:
        from shared.data.robomimic_image_demos import make_image_demos

        summary = make_image_demos(args.task, args.demos, args.seed, args.out, args.render_quality, progress=report)
        rendering = f", {summary.frames} camera frames at {summary.frames_per_second:.1f} frames/s"
    else:
        summary = make_demos(args.task, args.demos, args.seed, args.out, progress=report)
        rendering = ""
    lengths = summary.lengths
    print(f"{summary.task}: kept {summary.demos} of {summary.attempts} attempts (maker success "
          f"{100 * summary.demos / summary.attempts:.1f}%), {int(lengths.sum())} transitions, episode length mean "
          f"{lengths.mean():.1f} min {lengths.min()} max {lengths.max()}{rendering}, {summary.seconds:.0f} s")
    for path in summary.paths:
        print(f"wrote {path}")
    if args.images and args.grid is not None:
        print(write_grid(dataset_frames(args.out, 4, 6), args.grid, 2))
    return 0


def _cmd_data_frames(args: argparse.Namespace) -> int:
    if args.dataset is not None:
        frames = dataset_frames(args.dataset, args.rows, args.steps)
    else:
        normalization = None if args.normalization is None else load_normalization(args.normalization)
        meta = EnvMeta.load(f"{args.task}-img")
        suite = RobomimicImageSuite(str(env_meta_path(f"{args.task}-img")), proprio_keys(args.task),
                                    tuple(f"{camera}_image" for camera in meta.cameras), args.seed,
                                    args.render_quality)
        spec = EnvSpec(args.task, args.rows, 1, 1, 10**6, normalization, False, suite)
        frames, rate = env_frames(spec, args.steps, args.stride, args.seed)
        print(f"{args.task}: {args.rows} envs x {args.steps} frames after the wrappers, {rate:.1f} camera frames/s")
    print(write_grid(frames, args.out, args.zoom))
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
    p.add_argument("--images", action="store_true",
                   help="render the task's cameras (its -img env metadata) at every step: train.npz gets images "
                        "(N, 3 * cameras, H, W) uint8 beside states, the arm's proprioception (upstream's image data)")
    p.add_argument("--render-quality", choices=tuple(RENDER_QUALITIES), default="fast",
                   help="offscreen render settings with --images (default fast; docs/guide/robomimic_images.md)")
    p.add_argument("--grid", metavar="PNG", help="with --images: also write a PNG grid of the first 4 episodes' frames")
    p.set_defaults(run=_cmd_data_robomimic)

    p = data_sub.add_parser("frames", help="a PNG grid of the camera frames a policy sees (an image dataset's, or "
                            "a robomimic camera env's after its wrappers)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", metavar="DIR_OR_NPZ", help="an image dataset (train.npz with images)")
    source.add_argument("--task", choices=TASKS, help="a robomimic task's camera env")
    p.add_argument("--out", required=True, metavar="PNG", help="the grid to write")
    p.add_argument("--rows", type=positive_int, default=4, help="episodes (dataset) or envs (task) (default 4)")
    p.add_argument("--steps", type=positive_int, default=6, help="frames per row (default 6)")
    p.add_argument("--stride", type=positive_int, default=10,
                   help="with --task: random policy steps between frames (default 10)")
    p.add_argument("--seed", type=seed, default=0, help="with --task: env model, resets and actions (default 0)")
    p.add_argument("--normalization", metavar="NPZ", help="with --task: the state normalization the wrapper applies")
    p.add_argument("--render-quality", choices=tuple(RENDER_QUALITIES), default="fast",
                   help="with --task: offscreen render settings (default fast)")
    p.add_argument("--zoom", type=positive_int, default=2, help="pixels per frame pixel (default 2)")
    p.set_defaults(run=_cmd_data_frames)
