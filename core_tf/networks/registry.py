"""Builds any registered network family (shared/param_spec/families.py) from its settings."""

from __future__ import annotations

import importlib
from typing import Any

from shared.param_spec.families import family_of


def build_network(cfg: Any) -> Any:
    """The twin of the family `cfg` configures, built by its `from_config`."""
    family = family_of(cfg)
    module = importlib.import_module(f"core_tf.networks.{family.module}")
    return getattr(module, family.cls).from_config(cfg)
