"""Stand-alone SavedModel client: imports tensorflow and numpy only (and TF Serving's protos), never this project.

usage: python serving_client.py SAVEDMODEL_DIR INPUTS OUTPUTS [SAVEDMODEL_DIR INPUTS OUTPUTS ...]
INPUTS.npz holds `state` (an image policy's `rgb` too; `noise` for the `sample` signature); OUTPUTS.npz gets every
output. INPUTS.pb is a serialized tensorflow_serving PredictRequest instead, answered as TF Serving answers one: its
TensorProtos decoded with tf.make_ndarray, the signature model_spec names called, the outputs encoded back into a
serialized PredictResponse (OUTPUTS.pb). Several requests run in one process (each SavedModel loaded once), as one
TF Serving process answers many.
"""

import sys

import numpy as np
import tensorflow as tf


def predict(signatures, request: bytes) -> bytes:
    """A serialized PredictRequest -> the serialized PredictResponse of the signature it names."""
    from tensorflow_serving.apis import predict_pb2

    parsed = predict_pb2.PredictRequest.FromString(request)
    fn = signatures[parsed.model_spec.signature_name or "serving_default"]
    outputs = fn(**{k: tf.constant(tf.make_ndarray(v)) for k, v in parsed.inputs.items()})
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(parsed.model_spec)
    for k, v in outputs.items():
        response.outputs[k].CopyFrom(tf.make_tensor_proto(v.numpy()))
    return response.SerializeToString()


def main(args: list[str]) -> None:
    if not args or len(args) % 3:
        raise SystemExit(__doc__)
    loaded = {}
    for model_dir, inputs_path, outputs_path in zip(args[0::3], args[1::3], args[2::3]):
        if model_dir not in loaded:
            loaded[model_dir] = tf.saved_model.load(model_dir)
        if inputs_path.endswith(".pb"):
            with open(inputs_path, "rb") as f:
                response = predict(loaded[model_dir].signatures, f.read())
            with open(outputs_path, "wb") as f:
                f.write(response)
            continue
        inputs = dict(np.load(inputs_path))
        name = "sample" if "noise" in inputs else "serving_default"
        outputs = loaded[model_dir].signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        np.savez(outputs_path, **{k: v.numpy() for k, v in outputs.items()})
    project = sorted({m.split(".")[0] for m in sys.modules} & {"shared", "core_tf", "core_torch", "dppo"})
    if project:
        raise SystemExit(f"the client imported project modules: {project}")


if __name__ == "__main__":
    main(sys.argv[1:])
