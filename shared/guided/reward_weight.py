"""The reward term's weight by epoch, as the engine ramps it."""

from __future__ import annotations


def reward_weight(epoch: int, epochs: int, lambda_max: float, warmup_fraction: float = 0.2,
                  ramp_fraction: float = 0.4) -> float:
    """lambda in epoch `epoch` (0-based) of `epochs`: 0 for the first max(1, int(warmup_fraction epochs))
    epochs, then a linear ramp to lambda_max over int(ramp_fraction epochs) epochs (at least 1), then flat.
    With 12 epochs: 0, 0, 0, 1/4, 2/4, 3/4 of lambda_max, then lambda_max."""
    warmup = max(1, int(epochs * warmup_fraction))
    if epoch < warmup:
        return 0.0
    return lambda_max * min(1.0, (epoch - warmup) / max(1, int(epochs * ramp_fraction)))

