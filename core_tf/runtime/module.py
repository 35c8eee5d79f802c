"""Base Keras layer with torch-style canonical names for children and parameters.

Keras names variables by creation order; checkpoints and parity tables need the
stable, torch-style path of each parameter (e.g. `mlp_mean.layers.0.weight`).
Each Module registers its children under those names, so `named_parameters()`
and `named_modules()` read like their torch twins.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
import tensorflow as tf

from core_tf.runtime.precision import float_dtype

_ACTIVE_TRACE: list[dict[str, tf.Tensor]] = []


class Module(keras.layers.Layer):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("dtype", float_dtype().name)  # Keras casts inputs to the layer's dtype
        super().__init__(**kwargs)
        self._child_names: list[str] = []
        self._param_names: list[str] = []
        self._trace_path: str | None = None

    # ---------- registration ----------
    def add_child(self, name: str, layer: Module) -> Module:
        setattr(self, f"child_{name.replace('.', '_')}", layer)
        self._child_names.append(name)
        return layer

    def child(self, name: str) -> Module:
        return getattr(self, f"child_{name.replace('.', '_')}")

    def add_param(self, name: str, shape: tuple[int, ...], initializer: keras.initializers.Initializer) -> tf.Variable:
        var = self.add_weight(name=name, shape=shape, initializer=initializer, dtype=float_dtype(), trainable=True)
        setattr(self, f"param_{name}", var)
        self._param_names.append(name)
        return var

    # ---------- torch-style views ----------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name in self._child_names:
            yield name, self.child(name)

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, tf.Variable]]:
        for path, module in self.named_modules(prefix):
            for pname in module._param_names:
                yield (f"{path}.{pname}" if path else pname), getattr(module, f"param_{pname}")

    # ---------- layer-output tracing ----------
    def __call__(self, *args, **kwargs):
        out = super().__call__(*args, **kwargs)
        if _ACTIVE_TRACE and self._trace_path:
            _ACTIVE_TRACE[-1][self._trace_path] = out
        return out
