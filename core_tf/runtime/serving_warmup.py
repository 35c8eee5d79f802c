"""TF Serving's SavedModel warm-up file: assets.extra/tf_serving_warmup_requests.

TF Serving replays these requests when it loads a version, before the version takes traffic, so
lazy work (graph instantiation, XLA compiles for each batch shape) happens at load time instead of
on a client's first request. The file is a TFRecord of tensorflow.serving.PredictionLog messages.

tensorflow-serving-api is not a dependency: the few messages a predict request needs are declared
here with the field numbers of tensorflow_serving/apis/{prediction_log,predict,model}.proto, in a
private descriptor pool. A TensorProto travels as its serialized bytes (the same wire format as the
embedded message).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tensorflow.core.framework import tensor_pb2

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MAX_RECORDS = 1000  # TF Serving refuses a warm-up file with more records

_PACKAGE = "tensorflow.serving"
_F = descriptor_pb2.FieldDescriptorProto


def _declare(file: descriptor_pb2.FileDescriptorProto, name: str,
             fields: list[tuple[str, int, int, str | None]]) -> descriptor_pb2.DescriptorProto:
    msg = file.message_type.add(name=name)
    for field, number, kind, type_name in fields:
        label = _F.LABEL_REPEATED if field == "inputs" else _F.LABEL_OPTIONAL  # a map is a repeated entry
        f = msg.field.add(name=field, number=number, type=kind, label=label)
        if type_name:
            f.type_name = f".{_PACKAGE}.{type_name}"
    return msg


def _message_classes() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(name="dppo/tf_serving_prediction_log_subset.proto",
                                              package=_PACKAGE, syntax="proto3")
    _declare(file, "ModelSpec", [("name", 1, _F.TYPE_STRING, None), ("signature_name", 3, _F.TYPE_STRING, None)])
    request = _declare(file, "PredictRequest", [("model_spec", 1, _F.TYPE_MESSAGE, "ModelSpec"),
                                                ("inputs", 2, _F.TYPE_MESSAGE, "PredictRequest.InputsEntry")])
    entry = request.nested_type.add(name="InputsEntry")  # map<string, TensorProto>
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    _declare(file, "PredictLog", [("request", 1, _F.TYPE_MESSAGE, "PredictRequest")])
    _declare(file, "PredictionLog", [("predict_log", 6, _F.TYPE_MESSAGE, "PredictLog")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in ("ModelSpec", "PredictRequest", "PredictLog", "PredictionLog")}


_MESSAGES = _message_classes()


def _tensor_proto(value: np.ndarray) -> Any:
    value = np.asarray(value)
    if value.size > 1 and np.all(value == value.flat[0]):  # one value stands for all (TF repeats the last one)
        return tf.make_tensor_proto(value.flat[0], dtype=value.dtype, shape=value.shape)
    return tf.make_tensor_proto(value)


def predict_record(signature: str, inputs: dict[str, np.ndarray]) -> bytes:
    """One serialized PredictionLog holding a predict request for `signature`."""
    m = _MESSAGES
    request = m["PredictRequest"](model_spec=m["ModelSpec"](signature_name=signature))
    for key, value in inputs.items():
        request.inputs[key] = _tensor_proto(value).SerializeToString()
    return m["PredictionLog"](predict_log=m["PredictLog"](request=request)).SerializeToString()


def write_warmup_requests(saved_model_dir: str | Path, requests: list[tuple[str, dict[str, np.ndarray]]]) -> Path:
    """Write (signature, inputs) requests as the SavedModel's warm-up file; returns its path."""
    if len(requests) > MAX_RECORDS:
        raise ValueError(f"{len(requests)} warm-up requests; TF Serving accepts at most {MAX_RECORDS}")
    path = Path(saved_model_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests:
            writer.write(predict_record(signature, inputs))
    return path


def read_warmup_requests(saved_model_dir: str | Path) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The (signature, inputs) requests of a SavedModel's warm-up file, in file order."""
    out = []
    for record in tf.data.TFRecordDataset(str(Path(saved_model_dir) / WARMUP_FILE)):
        request = _MESSAGES["PredictionLog"].FromString(record.numpy()).predict_log.request
        inputs = {key: tf.make_ndarray(tensor_pb2.TensorProto.FromString(value))
                  for key, value in request.inputs.items()}
        out.append((request.model_spec.signature_name or "serving_default", inputs))
    return out
