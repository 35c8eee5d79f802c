"""`dppo convert`: checkpoints between canonical, torch and TF formats; upstream imports."""

from __future__ import annotations

import argparse

from shared.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a checkpoint between canonical, torch and tf formats")
    p.add_argument("--checkpoint", help="input checkpoint (.npz, .pt or TF directory)")
    p.add_argument("--from-upstream", metavar="STATE_PT", help="an upstream irom-lab/dppo state_<n>.pt to import")
    p.add_argument("--config", help="with --from-upstream: the config describing its architecture")
    p.add_argument("--to", default="canonical", choices=("canonical", "torch", "tf"),
                   help="output format: canonical .npz, torch .pt file or TF checkpoint directory (default canonical)")
    p.add_argument("--out", required=True, help="output checkpoint path (a directory for --to tf)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of --config (with --from-upstream)")
    p.set_defaults(run=run)



def run(args: argparse.Namespace) -> int:
    from dppo.algorithms.models import model_plan
    from dppo.checkpoints.formats import check_checkpoint_out, read_checkpoint, write_checkpoint
    from shared.checkpoint import check_strict
    from shared.settings import load_settings, read_config

    check_checkpoint_out(args.out, args.to)
    if args.from_upstream:
        from dppo.checkpoints.upstream import import_upstream

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
