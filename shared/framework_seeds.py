"""Seeds for the frameworks' own random streams (dropout masks), derived from the config seed.

Everything else random (batches, timesteps, noise, minibatch orders) is drawn in numpy keyed by
seed and step. Dropout draws inside the frameworks, so each backend reseeds its dropout stream at
the start of every pre-training epoch and fine-tuning iteration with `framework_seed(seed, step)`:
a run is reproducible from its config, and a run resumed at a checkpoint (always at such a
boundary) continues exactly, with nothing to save. The two frameworks draw different masks.
"""

from __future__ import annotations

import numpy as np

_STREAM = 7  # keeps these seeds apart from the numpy streams keyed by (seed, step, ...)


def framework_seed(seed: int, step: int) -> int:
    """A 31-bit seed for epoch/iteration `step` of a run with config seed `seed`."""
    return int(np.random.default_rng([seed, step, _STREAM]).integers(0, 2**31 - 1))
