"""First-call and warm latency of an exported SavedModel (and its ONNX export under onnxruntime) per batch
size, each model in a fresh process.

    python -m benchmarks.serving_latency [--checkpoint CKPT] [--batches 1,2,3,...] [--repeats 20] [--json OUT]

Exports the checkpoint twice (XLA and --no-xla) into a temporary directory, then loads each in a new
process and calls serving_default once per batch size (first call: what the first client request of
that size waits) and `repeats` more times (warm: the median). The XLA model is measured twice: loaded
bare, and loaded the way TF Serving loads it, replaying assets.extra/tf_serving_warmup_requests before
the first request (the replay's time is reported as load time, which TF Serving spends before the
version takes traffic). The ONNX export (`dppo export --format onnx`) is timed in onnxruntime the same
way: its deterministic graph, with noise drawn for each batch (`--no-onnx` leaves it out; an image policy,
which ONNX export refuses, has no such column). An image policy's requests carry random uint8 frames beside the
state.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_CHECKPOINT = "data/checkpoints/hopper_pretrain_diffusion_mlp_e40.npz"
DEFAULT_BATCHES = (1, 2, 3, 5, 7, 16, 100, 257, 1024)
MODES = {"xla": (True, False), "xla + warm-up replay": (True, True), "no-xla + warm-up replay": (False, True)}


def measure(model_dir: str, batches: list[int], repeats: int, replay: bool) -> dict[str, Any]:
    """In this process: load, optionally replay the warm-up file, then time serving_default per batch."""
    import numpy as np
    import tensorflow as tf

    from dppo.interop.export import load_saved_model

    tic = time.perf_counter()
    loaded = load_saved_model(model_dir, warm=replay)
    load_s = time.perf_counter() - tic
    fn = loaded.signatures["serving_default"]
    specs = fn.structured_input_signature[1]  # state, and an image policy's uint8 rgb
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        inputs = {name: tf.constant(rng.integers(0, 256, (batch, *spec.shape[1:]), dtype=np.uint8)
                                    if spec.dtype == tf.uint8 else
                                    rng.uniform(-1, 1, (batch, *spec.shape[1:])).astype(np.float32))
                  for name, spec in specs.items()}
        tic = time.perf_counter()
        fn(**inputs)["action"].numpy()
        first = time.perf_counter() - tic
        warm = []
        for _ in range(repeats):
            tic = time.perf_counter()
            fn(**inputs)["action"].numpy()
            warm.append(time.perf_counter() - tic)
        rows.append({"batch": batch, "first_s": first, "warm_s": statistics.median(warm)})
    return {"load_s": load_s, "rows": rows}


def measure_onnx(export_dir: str, batches: list[int], repeats: int) -> dict[str, Any]:
    """In this process: open the ONNX graphs in onnxruntime, then time the deterministic one per batch."""
    import numpy as np

    from dppo.interop.onnx import OnnxPolicy

    tic = time.perf_counter()
    policy = OnnxPolicy(export_dir)
    load_s = time.perf_counter() - tic
    inputs = json.loads((Path(export_dir) / "signature.json").read_text())["inputs"]
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        state = rng.uniform(-1, 1, (batch, *inputs["state"][1:])).astype(np.float32)
        # the deterministic graph's noise (a diffusion chain's; a Gaussian or GMM policy's takes none)
        noise = {name: rng.standard_normal((batch, *inputs[name][1:])).astype(np.float32)
                 for name in policy.input_names("deterministic")[1:]}
        tic = time.perf_counter()
        policy.run("deterministic", state, **noise)
        first = time.perf_counter() - tic
        warm = []
        for _ in range(repeats):
            tic = time.perf_counter()
            policy.run("deterministic", state, **noise)
            warm.append(time.perf_counter() - tic)
        rows.append({"batch": batch, "first_s": first, "warm_s": statistics.median(warm)})
    return {"load_s": load_s, "rows": rows}


def run(checkpoint: str, batches: list[int], repeats: int, onnx: bool = True,
        normalization: str | None = None) -> dict[str, Any]:
    from dppo.interop.export import export_saved_model

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {xla: str(export_saved_model(checkpoint, f"{tmp}/m", version=int(not xla) + 1,
                                               normalization_path=normalization, xla=xla))
                for xla in (True, False)}
        for mode, (xla, replay) in MODES.items():
            cmd = [sys.executable, "-m", "benchmarks.serving_latency", "--measure", dirs[xla],
                   "--batches", ",".join(map(str, batches)), "--repeats", str(repeats)]
            out = subprocess.run(cmd + (["--replay"] if replay else []), capture_output=True, text=True, check=True)
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        if onnx:
            from dppo.interop.onnx import export_onnx
            from shared.errors import UserError

            try:
                onnx_dir = str(export_onnx(checkpoint, f"{tmp}/o", normalization_path=normalization))
            except UserError as e:  # an image policy: the SavedModel only
                print(f"no onnxruntime column: {e}", file=sys.stderr)
                return results
            cmd = [sys.executable, "-m", "benchmarks.serving_latency", "--measure-onnx", onnx_dir,
                   "--batches", ",".join(map(str, batches)), "--repeats", str(repeats)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results["onnxruntime"] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def format_table(results: dict[str, Any]) -> str:
    modes = list(results)
    head = "| batch | " + " | ".join(f"{m}: first / warm ms" for m in modes) + " |"
    lines = [head, "|" + " --- |" * (len(modes) + 1)]
    for i, row in enumerate(results[modes[0]]["rows"]):
        cells = [f"{results[m]['rows'][i]['first_s'] * 1e3:.0f} / {results[m]['rows'][i]['warm_s'] * 1e3:.1f}"
                 for m in modes]
        lines.append(f"| {row['batch']} | " + " | ".join(cells) + " |")
    lines.append("| load (s) | " + " | ".join(f"{results[m]['load_s']:.1f}" for m in modes) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="checkpoint to export (default: %(default)s)")
    p.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)),
                   help="comma-separated batch sizes, called in this order (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=20, help="warm calls per batch size (default: %(default)s)")
    p.add_argument("--normalization", help="the dataset's normalization.npz, for a checkpoint whose config names none")
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--measure", metavar="SAVED_MODEL", help=argparse.SUPPRESS)  # the child process's job
    p.add_argument("--replay", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--measure-onnx", metavar="ONNX_DIR", help=argparse.SUPPRESS)
    p.add_argument("--no-onnx", action="store_true", help="leave out the onnxruntime column")
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    if args.measure:
        print(json.dumps(measure(args.measure, batches, args.repeats, args.replay)))
        return
    if args.measure_onnx:
        print(json.dumps(measure_onnx(args.measure_onnx, batches, args.repeats)))
        return
    results = run(args.checkpoint, batches, args.repeats, onnx=not args.no_onnx, normalization=args.normalization)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
