"""Stand-alone SavedModel client: imports tensorflow and numpy only, never this project.

usage: python serving_client.py SAVEDMODEL_DIR INPUTS.npz OUTPUTS.npz [SAVEDMODEL_DIR INPUTS.npz OUTPUTS.npz ...]
INPUTS holds `state` (an image policy's `rgb` too; `noise` for the `sample` signature); OUTPUTS gets every
output. Several requests run in one process (each SavedModel loaded once), as one TF Serving process answers many.
"""

import sys

import numpy as np
import tensorflow as tf


def main(args: list[str]) -> None:
    if not args or len(args) % 3:
        raise SystemExit(__doc__)
    loaded = {}
    for model_dir, inputs_path, outputs_path in zip(args[0::3], args[1::3], args[2::3]):
        if model_dir not in loaded:
            loaded[model_dir] = tf.saved_model.load(model_dir)
        inputs = dict(np.load(inputs_path))
        name = "sample" if "noise" in inputs else "serving_default"
        outputs = loaded[model_dir].signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        np.savez(outputs_path, **{k: v.numpy() for k, v in outputs.items()})
    project = sorted({m.split(".")[0] for m in sys.modules} & {"shared", "core_tf", "core_torch", "dppo"})
    if project:
        raise SystemExit(f"the client imported project modules: {project}")


if __name__ == "__main__":
    main(sys.argv[1:])
