"""TensorBoard scalars written by the backend's own framework. A write that fails (permissions,
read-only file system, full disk) raises one WriteFailedError naming the events directory."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from shared.errors import WriteFailedError


class ScalarWriter:
    def __init__(self, logdir: Path, backend: str) -> None:
        self.backend, self.logdir = backend, logdir
        if backend == "torch":
            from torch.utils.tensorboard import SummaryWriter

            if importlib.util.find_spec("tensorflow") is not None:  # a torch-only install runs without TF
                import core_tf  # noqa: F401  tensorboard imports TF when present; keep its start-up banner quiet

            self._writer = self._guard(lambda: SummaryWriter(str(logdir)))
        else:
            import tensorflow as tf

            self._writer = self._guard(lambda: tf.summary.create_file_writer(str(logdir)))

    def _guard(self, write: Any) -> Any:
        """write(), with its OSError (torch) or TF error turned into WriteFailedError."""
        errors: tuple[type[BaseException], ...] = (OSError,)
        tf = sys.modules.get("tensorflow")  # torch's SummaryWriter writes through tf.io.gfile when TF is there
        if tf is not None:
            errors = (OSError, tf.errors.OpError)
        try:
            return write()
        except errors as exc:
            raise WriteFailedError(self.logdir, exc) from None

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.backend == "torch":
            def write() -> None:
                for k, v in values.items():
                    self._writer.add_scalar(k, v, step)
        else:
            import tensorflow as tf

            def write() -> None:
                with self._writer.as_default():
                    for k, v in values.items():
                        tf.summary.scalar(k, v, step=step)
        self._guard(write)

    def close(self) -> None:
        self._guard(self._writer.flush)
        self._guard(self._writer.close)
