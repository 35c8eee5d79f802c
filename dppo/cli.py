"""`dppo` command line. Bad input gets one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dppo.arguments import check_output_dir, check_output_file, non_negative_int, positive_int, seed, write_json
from dppo.tf_logging import quiet_tensorflow
from shared.errors import RunTerminated, UserError


def _cmd_parity(args: argparse.Namespace) -> int:
    from dppo.parity import run_parity
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


def _cmd_convert(args: argparse.Namespace) -> int:
    from dppo.checkpoints import check_checkpoint_out, read_checkpoint, write_checkpoint
    from dppo.models import model_plan
    from shared.checkpoint import check_strict
    from shared.settings import load_settings, read_config

    check_checkpoint_out(args.out, args.to)
    if args.from_upstream:
        from dppo.upstream import import_upstream

        if not args.config:
            raise UserError("--from-upstream needs --config: the upstream run's architecture")
        ckpt = import_upstream(args.from_upstream, load_settings(args.config, args.overrides))
        write_checkpoint(args.out, ckpt, args.to)
        print(f"imported upstream {args.from_upstream} -> {args.to} checkpoint {args.out}")
        return 0
    if not args.checkpoint:
        raise UserError("convert needs --checkpoint (or --from-upstream with --config)")
    if args.overrides:
        raise UserError("key=value overrides apply to --from-upstream's --config; a dppo checkpoint carries "
                        "its own config")
    ckpt = read_checkpoint(args.checkpoint)
    plan = model_plan(read_config(ckpt.config)) if ckpt.config else None
    if plan is not None:
        for group in ("model", "ema"):
            if group in ckpt.groups:
                check_strict(plan.policy_spec(), ckpt.groups[group], f"{args.checkpoint} [{group}]")
    write_checkpoint(args.out, ckpt, args.to)
    print(f"wrote {args.to} checkpoint {args.out}")
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from dppo.pretrain import run_pretrain
    from shared.settings import load_settings

    summary = run_pretrain(load_settings(args.config, args.overrides, ("pretrain",)), args.backend, quiet=args.quiet)
    print(f"pretrained {summary['epochs']} epochs on {args.backend}: final loss {summary['final_loss']:.5f}; "
          f"checkpoint {summary['checkpoint']}; logs in {summary['logdir']}")
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from dppo.finetune import run_finetune
    from shared.settings import load_settings

    cfg = load_settings(args.config, args.overrides, ("finetune",))
    if cfg.is_diffusion and not cfg.base_policy_path:
        print("warning: no base_policy_path; fine-tuning a randomly initialised diffusion policy", file=sys.stderr)
    summary = run_finetune(cfg, args.backend, quiet=args.quiet)
    last = summary["last"]
    print(f"fine-tuned {summary['iterations']} iterations on {args.backend}: last avg episode reward "
          f"{last.get('avg_episode_reward')}; checkpoint {summary['checkpoint']}; logs in {summary['logdir']}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from dppo.evaluate import evaluate
    from shared.settings import load_settings

    check_output_file(args.json, "--json")
    cfg = load_settings(args.config, args.overrides, ("finetune", "eval"))
    result = evaluate(cfg, args.backend, args.episodes, args.seed)
    score = "" if result["d4rl_score_mean"] is None else (
        f"; D4RL score {result['d4rl_score_mean']:.1f} +- {result['d4rl_score_std']:.1f}")
    print(f"{args.backend}: return {result['return_mean']:.1f} +- {result['return_std']:.1f} over "
          f"{result['episodes']} episodes{score}")
    if args.json:
        write_json(args.json, result)
    return 0


def _cmd_main(args: argparse.Namespace) -> int:
    from dppo.main_job import run_main_job

    check_output_dir(args.workdir, "--workdir")
    backends = ["torch", "tf"] if args.backend == "both" else [args.backend]
    run_main_job(args.config, backends, args.workdir, quiet=args.quiet)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from dppo.compare import run_compare
    from dppo.compare_report import results_markdown

    check_output_dir(args.out, "--out")
    backends = ["torch", "tf"] if args.backend == "both" else [args.backend]
    report, code = run_compare(args.config, backends, args.seeds, args.overrides, args.out, args.eval_episodes,
                               quiet=args.quiet)
    print(results_markdown(report["env_name"], report["rows"], report["eval_episodes"]))
    print(f"wrote {args.out}/compare.png, results.md and results.json")
    return code


def _cmd_export(args: argparse.Namespace) -> int:
    from dppo.export import export_saved_model

    check_output_dir(args.out, "--out")
    target = export_saved_model(args.checkpoint, args.out, args.version, args.normalization, args.act_steps,
                                xla=not args.no_xla)
    print(f"wrote SavedModel {target} (signatures: serving_default, sample)")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from dppo.bench import main_bench

    check_output_file(args.json, "--json")
    main_bench(args.json, args.repeats)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dppo", description="DPPO twin implementation (PyTorch and TensorFlow)")
    sub = parser.add_subparsers(dest="command", required=True)
    backend_help = "framework to run: torch or tf (same numbers, checkpoints interchangeable)"

    p = sub.add_parser("parity", help="compare the torch and TF twins built from one config")
    p.add_argument("--config", required=True, help="YAML config (pretrain, finetune or eval)")
    p.add_argument("--json", help="write the per-layer table as JSON here")
    p.add_argument("--seed", type=seed, default=0, help="seed of the shared initialisation and inputs (default 0)")
    p.add_argument("--batch", type=positive_int, default=8, help="rows of the probe batch (default 8)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides")
    p.set_defaults(run=_cmd_parity)

    p = sub.add_parser("pretrain", help="pre-train the diffusion policy on demonstrations")
    p.add_argument("--config", required=True, help="YAML pretrain config")
    p.add_argument("--backend", required=True, choices=("torch", "tf"), help=backend_help)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", help="key=value config overrides (e.g. resume=PATH)")
    p.set_defaults(run=_cmd_pretrain)

    from dppo.data_command import register as register_data

    register_data(sub)

    p = sub.add_parser("finetune", help="fine-tune with PPO in a gymnasium MuJoCo environment")
    p.add_argument("--config", required=True, help="YAML fine-tuning config")
    p.add_argument("--backend", required=True, choices=("torch", "tf"), help=backend_help)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", help="key=value config overrides (e.g. base_policy_path=CKPT)")
    p.set_defaults(run=_cmd_finetune)

    p = sub.add_parser("eval", help="evaluate a policy (deterministic sampling) over whole episodes")
    p.add_argument("--config", required=True, help="YAML fine-tuning config or upstream eval config")
    p.add_argument("--backend", required=True, choices=("torch", "tf"), help=backend_help)
    p.add_argument("--episodes", type=positive_int, default=10,
                   help="episodes to run, one env each, all at once (default 10)")
    p.add_argument("--seed", type=seed, default=10_000,
                   help="env i is reset with seed SEED+i; the sampling noise is seeded from it too (default 10000)")
    p.add_argument("--json", help="write the result (returns, means, D4RL scores) here")
    p.add_argument("overrides", nargs="*", help="key=value overrides (base_policy_path=CKPT)")
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("main", help="the main job: pretrain, evaluate, fine-tune, evaluate, plot")
    p.add_argument("--config", default="configs/hopper/main_job.yaml",
                   help="the job's YAML: the two configs, their overrides, the data (default %(default)s)")
    p.add_argument("--backend", choices=("torch", "tf", "both"), default="torch",
                   help="framework to run, or both one after the other (default torch)")
    p.add_argument("--workdir", default="runs/main",
                   help="where runs, the SavedModel, results.json and the plot go (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_cmd_main)

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
    p.set_defaults(run=_cmd_compare)

    p = sub.add_parser("export", help="export a diffusion policy checkpoint as a TF Serving SavedModel")
    p.add_argument("--checkpoint", required=True, help="pretrain, DPPO or RWR checkpoint (.npz, .pt or TF directory)")
    p.add_argument("--out", required=True, help="model base directory; the SavedModel goes to OUT/<version>")
    p.add_argument("--version", type=non_negative_int,
                   help="version number (default: one past the highest present)")
    p.add_argument("--normalization", help="normalization.npz (default: the checkpoint config's normalization_path)")
    p.add_argument("--act-steps", type=positive_int,
                   help="actions per chunk returned by serving_default (default: the config's act_steps)")
    p.add_argument("--no-xla", action="store_true", help="plain graph, for serving binaries built without XLA")
    p.set_defaults(run=_cmd_export)

    p = sub.add_parser("bench", help="benchmark sampling, PPO update, pretraining step and serving")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--repeats", type=positive_int, default=20, help="timed calls per measurement (default 20)")
    p.set_defaults(run=_cmd_bench)

    p = sub.add_parser("convert", help="convert a checkpoint between canonical, torch and tf formats")
    p.add_argument("--checkpoint", help="input checkpoint (.npz, .pt or TF directory)")
    p.add_argument("--from-upstream", metavar="STATE_PT", help="an upstream irom-lab/dppo state_<n>.pt to import")
    p.add_argument("--config", help="with --from-upstream: the config describing its architecture")
    p.add_argument("--to", default="canonical", choices=("canonical", "torch", "tf"),
                   help="output format: canonical .npz, torch .pt file or TF checkpoint directory (default canonical)")
    p.add_argument("--out", required=True, help="output checkpoint path (a directory for --to tf)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of --config (with --from-upstream)")
    p.set_defaults(run=_cmd_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from dppo.run_stop import sigterm_raises

    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    try:
        with sigterm_raises():
            return args.run(args)
    except UserError as exc:
        print(f"dppo {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except RunTerminated as exc:
        print(f"dppo {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"dppo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
