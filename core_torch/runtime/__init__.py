"""What runs the models: optimizers, LR schedules, RNG, precision, checkpoints, probes, compilation."""
