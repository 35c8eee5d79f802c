"""Record every sub-module's output by canonical module path (for parity tables)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import tensorflow as tf

from core_tf.runtime import module as module_lib


@contextmanager
def record_layer_outputs(root: module_lib.Module, prefix: str = "") -> Iterator[dict[str, tf.Tensor]]:
    outputs: dict[str, tf.Tensor] = {}
    modules = [(f"{prefix}{name}", m) for name, m in root.named_modules() if name]
    for path, m in modules:
        m._trace_path = path
    module_lib._ACTIVE_TRACE.append(outputs)
    try:
        yield outputs
    finally:
        module_lib._ACTIVE_TRACE.remove(outputs)
        for _, m in modules:
            m._trace_path = None
