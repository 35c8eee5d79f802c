"""torch.compile with inductor's on-disk cache kept apart per CPU capability.

Inductor keys its cached graphs without the vector ISA torch dispatches to: kernels compiled under
ATEN_CPU_CAPABILITY=avx2 and then loaded by a process running AVX-512 crash it (a segmentation fault
seen with torch 2.13: `ATEN_CPU_CAPABILITY=avx2 pytest tests/torch`, then plain `pytest tests/torch`).
Unless the user chose TORCHINDUCTOR_CACHE_DIR, each capability gets its own folder beside the default.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import torch


def _default_cache_dir() -> str:
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        return os.path.abspath(default_cache_dir())
    except ImportError:  # a torch that moved it: the same place by hand
        return os.path.join(tempfile.gettempdir(), f"torchinductor_{os.getuid()}")


def inductor_cache_dir() -> str:
    return f"{_default_cache_dir()}_{torch.backends.cpu.get_cpu_capability().lower()}"


def compile_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """torch.compile(fn, dynamic=False), its cache in this CPU capability's folder (inductor writes its
    own default into TORCHINDUCTOR_CACHE_DIR once it has used it: that one is replaced too)."""
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR", _default_cache_dir()) == _default_cache_dir():
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = inductor_cache_dir()
    return torch.compile(fn, dynamic=False)
