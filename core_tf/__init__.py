"""TensorFlow / Keras 3 twin of the DPPO diffusion policy. Mirrors core_torch/ file for file."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ["KERAS_BACKEND"] != "tensorflow":
    raise ImportError(f"core_tf needs KERAS_BACKEND=tensorflow, found {os.environ['KERAS_BACKEND']!r}")
