"""What a parity probe returns from either framework: plain numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Probe:
    layers: dict[str, np.ndarray]  # every sub-module's output, by canonical path
    output: np.ndarray
    input_grads: dict[str, np.ndarray]  # d(sum(output * cotangent)) / d(float input)
    param_grads: dict[str, np.ndarray]  # same, by canonical parameter name
