"""The application's view of the algorithm table (shared/settings/algorithms.py): each entry's driver module,
imported on first use, and the agent classes of the twins it names."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from shared.errors import ConfigError
from shared.settings import ALGORITHMS, Algorithm, algorithm_of

BACKENDS = ("torch", "tf")

__all__ = ["ALGORITHMS", "Algorithm", "algorithm_of", "backend_class", "driver"]


def driver(cfg: Any) -> ModuleType:
    """The driver module of a fine-tuning config's algorithm: initial_params, build_agent, Trainer, ..."""
    return importlib.import_module(algorithm_of(cfg).driver)


def backend_class(backend: str, name: str) -> Any:
    """`module.Class` under core_<backend>/algorithms/, e.g. backend_class("tf", "dql_diffusion.DQLDiffusionAgent")."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose {' or '.join(BACKENDS)}")
    module, cls = name.rsplit(".", 1)
    return getattr(importlib.import_module(f"core_{backend}.algorithms.{module}"), cls)
