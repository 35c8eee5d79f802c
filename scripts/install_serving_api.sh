#!/usr/bin/env bash
# tensorflow-serving-api (TF Serving's PredictRequest protos, for the gRPC test of tests/cli/test_export_images.py)
# into the Python given (default .venv/bin/python), unless it imports already. Its metadata asks for the full
# `tensorflow` package, which would install a second TF beside tensorflow-cpu (the same import name), so it goes in
# with --no-deps, at the installed TF's minor version (its generated protos import with that TF's protobuf).
set -euo pipefail
PY=${1:-.venv/bin/python}
if ! "$PY" -c "import tensorflow_serving.apis.predict_pb2" 2>/dev/null; then
    minor=$("$PY" -c "import tensorflow as tf; print('.'.join(tf.__version__.split('.')[:2]))" 2>/dev/null)
    "$PY" -m pip install -q --no-deps "tensorflow-serving-api==${minor}.*"
fi
