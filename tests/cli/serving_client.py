"""Stand-alone SavedModel client: imports tensorflow and numpy only, never this project.

usage: python serving_client.py SAVEDMODEL_DIR INPUTS.npz OUTPUTS.npz
INPUTS holds `state` (and `noise` for the `sample` signature); OUTPUTS gets every output.
"""

import sys

import numpy as np
import tensorflow as tf


def main(model_dir: str, inputs_path: str, outputs_path: str) -> None:
    loaded = tf.saved_model.load(model_dir)
    inputs = dict(np.load(inputs_path))
    name = "sample" if "noise" in inputs else "serving_default"
    outputs = loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
    np.savez(outputs_path, **{k: v.numpy() for k, v in outputs.items()})
    project = sorted({m.split(".")[0] for m in sys.modules} & {"shared", "core_tf", "core_torch", "dppo"})
    if project:
        raise SystemExit(f"the client imported project modules: {project}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
