"""`dppo ddpo pretrain|train`: DDPO on a small class-conditional image diffusion model the project trains
itself (scikit-learn's 8x8 digits; the class label is the prompt): pre-train the denoiser, then fine-tune it
with DDPO-SF, DDPO-IS, DDPO-ISKL, RWR or sparse RWR against a JPEG-size or prompt-alignment reward, e.g.
`dppo ddpo train --config configs/ddpo/digits_compress_is.yaml --backend tf`."""

from __future__ import annotations

import argparse

from dppo.commands.arguments import BACKEND_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ddpo", help="DDPO image-diffusion fine-tuning on the digits: pretrain, train")
    actions = p.add_subparsers(dest="ddpo_action", required=True, metavar="{pretrain,train}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", required=True, choices=("torch", "tf"), help=BACKEND_HELP)
    common.add_argument("--quiet", action="store_true", help="no progress line")
    common.add_argument("overrides", nargs="*", help="key=value config overrides (e.g. train.iterations=10)")

    pre = actions.add_parser("pretrain", parents=[common],
                             help="pre-train the class-conditional denoiser (resumes from the logdir)")
    pre.add_argument("--config", required=True, help="YAML pre-training config (configs/ddpo/pretrain_digits.yaml)")
    pre.set_defaults(run=run_pretrain)

    train = actions.add_parser("train", parents=[common],
                               help="fine-tune the pre-trained denoiser (resumes from the logdir's latest checkpoint)")
    train.add_argument("--config", required=True, help="YAML fine-tuning config (configs/ddpo/digits_*.yaml)")
    train.set_defaults(run=run_train)


def run_pretrain(args: argparse.Namespace) -> int:
    from dppo.training.ddpo import run_pretrain as pretrain
    from shared.settings.ddpo import load_ddpo_pretrain_settings

    s = pretrain(load_ddpo_pretrain_settings(args.config, args.overrides), args.backend, quiet=args.quiet)
    print(f"pre-trained {s['epochs']} epochs on {args.backend}: loss {s['loss']:.4f}; checkpoint {s['checkpoint']}; "
          f"logs in {s['logdir']}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from dppo.training.ddpo import run_train as train
    from shared.settings.ddpo import load_ddpo_settings

    s = train(load_ddpo_settings(args.config, args.overrides), args.backend, quiet=args.quiet)
    print(f"trained {s['iterations']} iterations on {args.backend}: evaluation reward {s['eval_reward']:.4f}, "
          f"prompted-digit accuracy {s['eval_accuracy']:.3f}; checkpoint {s['checkpoint']}; logs in {s['logdir']}")
    return 0
