"""Application layer: the `dppo` command wiring shared/ to core_torch/ and core_tf/."""

import os as _os

__version__ = "0.1.0"

# torch's OpenMP worker threads spin while they wait for work. When another process shares the cores the
# spinning threads take its time and it takes theirs: a DPPO job's update ran 3.2x slower beside one busy
# process (docs/evidence/benchmarks.md, "Sharing the cores"). Sleeping waiters cost nothing measurable with
# the cores to themselves and halve the loss beside a competitor. Set here, before anything imports torch
# (OpenMP reads it once); a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
