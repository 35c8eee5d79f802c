"""`dppo guide train|sample|eval`: reward-guided conditional diffusion (denoising loss minus a reward on the
reconstructed sample, DDPM sampling with MPPI re-weighting), e.g. on the shipped context-shifted Rosenbrock
benchmark: `dppo guide train --config configs/reward_guided/rosenbrock.yaml --backend tf`."""

from __future__ import annotations

import argparse

import numpy as np

from dppo.commands.arguments import BACKEND_HELP, positive_int, seed
from dppo.runs.paths import check_output_file, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("guide", help="reward-guided diffusion with MPPI sampling: train, sample, eval")
    actions = p.add_subparsers(dest="guide_action", required=True, metavar="{train,sample,eval}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", required=True, help="YAML reward-guided config (configs/reward_guided/)")
    common.add_argument("--backend", required=True, choices=("torch", "tf"), help=BACKEND_HELP)
    common.add_argument("overrides", nargs="*", help="key=value config overrides (e.g. train.reward_gradient=true)")

    train = actions.add_parser("train", parents=[common], help="train; resumes from the logdir's latest checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=run_train)

    trained = argparse.ArgumentParser(add_help=False)
    trained.add_argument("--checkpoint", help="checkpoint to load (default: the logdir's latest; either backend's)")
    trained.add_argument("--seed", type=seed, default=0, help="seed of the contexts and sampling noise (default 0)")
    trained.add_argument("--json", help="write the result here")

    sample = actions.add_parser("sample", parents=[common, trained], help="sample parameters for contexts")
    sample.add_argument("--contexts", help="contexts as 'a,b;c,d' (default: the author's demo 0,0;1,-1;-0.5,0.5)")
    sample.add_argument("--no-mppi", action="store_true", help="plain DDPM sampling, no MPPI re-weighting")
    sample.set_defaults(run=run_sample)

    evaluate = actions.add_parser("eval", parents=[common, trained],
                                  help="mean reward over fresh contexts, with and without MPPI")
    evaluate.add_argument("--contexts-n", type=positive_int, default=1024, help="contexts to sample (default 1024)")
    evaluate.set_defaults(run=run_eval)


def _settings(args: argparse.Namespace):  # noqa: ANN202
    from shared.settings.guided import load_guided_settings

    return load_guided_settings(args.config, args.overrides)


def run_train(args: argparse.Namespace) -> int:
    from dppo.training.guided import run_train as train

    s = train(_settings(args), args.backend, quiet=args.quiet)
    print(f"trained {s['epochs']} epochs on {args.backend}: validation reward {s['val_reward']:.3f} "
          f"({s['val_reward_plain']:.3f} without MPPI); checkpoint {s['checkpoint']}; logs in {s['logdir']}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from dppo.training.guided import parse_contexts
    from dppo.training.guided import run_sample as sample

    check_output_file(args.json, "--json")
    cfg = _settings(args)
    x = parse_contexts(args.contexts or "0,0;1,-1;-0.5,0.5", cfg.model.context_dim)
    out = sample(cfg, args.backend, args.checkpoint, x, args.seed, mppi=not args.no_mppi and cfg.sample.mppi)
    print(f"{args.backend} ({out['checkpoint']}):")
    print("context            sampled p            optimum p            reward")
    for x_i, p_i, o_i, r_i in zip(out["x"], out["p"], out["optimum"], out["reward"]):
        print(f"{np.array2string(x_i, precision=3):18s} {np.array2string(p_i, precision=3):20s} "
              f"{np.array2string(o_i, precision=3):20s} {r_i:.4f}")
    if args.json:
        write_json(args.json, {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in out.items()})
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from dppo.training.guided import run_eval as evaluate

    check_output_file(args.json, "--json")
    out = evaluate(_settings(args), args.backend, args.checkpoint, args.contexts_n, args.seed)
    lv = out["levels"]
    print(f"{args.backend} ({out['checkpoint']}), {out['contexts']} contexts: reward {out['mppi']['mean']:.4f} "
          f"+- {out['mppi']['stderr']:.4f} with MPPI, {out['plain']['mean']:.4f} +- {out['plain']['stderr']:.4f} "
          f"without; levels: data {lv['data']:.4f}, random {lv['random']:.4f}, optimum {lv['optimum']:.4f}")
    if args.json:
        write_json(args.json, out)
    return 0
