"""`dppo export`: a policy checkpoint as a TF Serving SavedModel."""

from __future__ import annotations

import argparse

from dppo.commands.arguments import non_negative_int, positive_int
from dppo.runs.paths import check_output_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a diffusion policy checkpoint as a TF Serving SavedModel")
    p.add_argument("--checkpoint", required=True, help="pretrain, DPPO or RWR checkpoint (.npz, .pt or TF directory)")
    p.add_argument("--out", required=True, help="model base directory; the SavedModel goes to OUT/<version>")
    p.add_argument("--version", type=non_negative_int,
                   help="version number (default: one past the highest present)")
    p.add_argument("--normalization", help="normalization.npz (default: the checkpoint config's normalization_path)")
    p.add_argument("--act-steps", type=positive_int,
                   help="actions per chunk returned by serving_default (default: the config's act_steps)")
    p.add_argument("--no-xla", action="store_true", help="plain graph, for serving binaries built without XLA")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dppo.interop.export import export_saved_model

    check_output_dir(args.out, "--out")
    target = export_saved_model(args.checkpoint, args.out, args.version, args.normalization, args.act_steps,
                                xla=not args.no_xla)
    print(f"wrote SavedModel {target} (signatures: serving_default, sample)")
    return 0
