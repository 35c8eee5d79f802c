"""TensorFlow / Keras 3 twin of the DPPO diffusion policy. Mirrors core_torch/ file for file."""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ["KERAS_BACKEND"] != "tensorflow":
    raise ImportError(f"core_tf needs KERAS_BACKEND=tensorflow, found {os.environ['KERAS_BACKEND']!r}")


def _import_tensorflow_quietly() -> None:
    """TF's C++ side prints start-up banners on fd 2 before Python can configure logging;
    keep them out of the CLI's one-line error messages. Python exceptions still propagate."""
    if "tensorflow" in sys.modules or os.environ.get("DPPO_TF_VERBOSE"):
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()
