"""Hypothesis profiles: `ci` (derandomized, the default) and `big` (HYPOTHESIS_PROFILE=big)."""

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=8, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("big", max_examples=200, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
