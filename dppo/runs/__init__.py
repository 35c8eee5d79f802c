"""A run's life on disk: logdir files, lock, stop signals, checkpoints, metrics, TensorBoard/W&B, progress."""
