"""`dppo export`: a policy checkpoint as a TF Serving SavedModel, or as ONNX graphs for onnxruntime."""

from __future__ import annotations

import argparse

from dppo.commands.arguments import non_negative_int, positive_int
from dppo.runs.paths import check_output_dir
from shared.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a policy checkpoint (diffusion, Gaussian, GMM; state or camera "
                                      "frames) as a TF Serving SavedModel or ONNX")
    p.add_argument("--checkpoint", required=True,
                   help="pre-training, PPO (diffusion, Gaussian, GMM), RWR, AWR, DIPO, DQL or QSM checkpoint "
                        "(.npz, .pt or TF directory)")
    p.add_argument("--out", required=True, help="model base directory; the export goes to OUT/<version>")
    p.add_argument("--format", choices=("savedmodel", "onnx"), default="savedmodel",
                   help="savedmodel (TF Serving; an image policy takes rgb uint8 beside the state) or onnx "
                        "(deterministic.onnx and sample.onnx, exported from the torch twin; state policies only; "
                        "needs onnx, onnxscript, onnxruntime)")
    p.add_argument("--version", type=non_negative_int,
                   help="version number (default: one past the highest present)")
    p.add_argument("--normalization", help="normalization.npz (default: the checkpoint config's normalization_path)")
    p.add_argument("--act-steps", type=positive_int,
                   help="actions per chunk returned by serving_default (default: the config's act_steps)")
    p.add_argument("--no-xla", action="store_true",
                   help="SavedModel: plain graph, for serving binaries built without XLA")
    p.add_argument("--max-bucket", type=positive_int,
                   help="SavedModel with XLA: the largest batch compiled (a power of two, default 1024; larger "
                        "batches run in chunks of it). Every bucket up to it is compiled when TF Serving replays "
                        "the warm-up file, so a smaller one loads faster (an image policy: minutes at 1024)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out, "--out")
    if args.format == "onnx":
        from dppo.interop.onnx import export_onnx

        for flag, given in (("--no-xla", args.no_xla), ("--max-bucket", args.max_bucket is not None)):
            if given:
                raise UserError(f"{flag} is a SavedModel option; ONNX graphs have no XLA")
        target = export_onnx(args.checkpoint, args.out, args.version, args.normalization, args.act_steps)
        print(f"wrote ONNX {target} (deterministic.onnx, sample.onnx; inputs batch first: signature.json)")
        return 0
    from dppo.interop.export import export_saved_model

    target = export_saved_model(args.checkpoint, args.out, args.version, args.normalization, args.act_steps,
                                xla=not args.no_xla, max_bucket=args.max_bucket)
    print(f"wrote SavedModel {target} (signatures: serving_default, sample)")
    return 0
