"""Thread settings that keep a job from collapsing beside another process: `dppo` makes torch's OpenMP waiters
sleep instead of spin (docs/evidence/benchmarks.md, "Sharing the cores"), unless the user chose."""

from __future__ import annotations

import os
import subprocess
import sys


def _policy_seen_by_torch(env: dict[str, str]) -> str:
    code = "import os, dppo, torch; print(os.environ['OMP_WAIT_POLICY'])"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_dppo_makes_openmp_waiters_sleep_before_torch_loads_unless_the_user_chose():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy_seen_by_torch(env) == "PASSIVE"
    assert _policy_seen_by_torch({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
