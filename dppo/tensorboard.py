"""TensorBoard scalars written by the backend's own framework."""

from __future__ import annotations

from pathlib import Path


class ScalarWriter:
    def __init__(self, logdir: Path, backend: str) -> None:
        self.backend = backend
        if backend == "torch":
            from torch.utils.tensorboard import SummaryWriter

            import core_tf  # noqa: F401  tensorboard imports TF when present; keep its start-up banner quiet

            self._writer = SummaryWriter(str(logdir))
        else:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(str(logdir))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.backend == "torch":
            for k, v in values.items():
                self._writer.add_scalar(k, v, step)
        else:
            import tensorflow as tf

            with self._writer.as_default():
                for k, v in values.items():
                    tf.summary.scalar(k, v, step=step)

    def close(self) -> None:
        self._writer.flush()
        self._writer.close()
