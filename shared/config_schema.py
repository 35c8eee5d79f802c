"""Declarative schemas for configs: unknown keys, wrong types and missing values get
one ConfigError naming the dotted key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigError


@dataclass(frozen=True)
class Field:
    kind: type | tuple[type, ...]
    required: bool = True
    nullable: bool = False


Schema = dict[str, "Field | Schema"]
ANY_MAPPING = Field(dict, required=False, nullable=True)  # free-form section (e.g. wandb)


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({"dict": "mapping", "float": "number"}.get(k.__name__, k.__name__) for k in kinds)


def _check_value(key: str, value: Any, field: Field) -> Any:
    if value is None:
        if field.nullable:
            return None
        raise ConfigError(f"config key '{key}' must not be null")
    kinds = field.kind if isinstance(field.kind, tuple) else (field.kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and bool not in kinds:
        raise ConfigError(f"config key '{key}' must be {_type_name(field.kind)}, got {value!r}")
    if not isinstance(value, kinds):
        raise ConfigError(f"config key '{key}' must be {_type_name(field.kind)}, got {value!r}")
    return value


def validate(cfg: dict[str, Any], schema: Schema, prefix: str = "") -> dict[str, Any]:
    """Check cfg against schema; returns cfg with ints widened to floats where floats are expected."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"config key '{prefix.rstrip('.') or '<root>'}' must be a mapping")
    for key in cfg:
        if key not in schema:
            raise ConfigError(f"unknown config key '{prefix}{key}'")
    out = dict(cfg)
    for key, spec in schema.items():
        dotted = f"{prefix}{key}"
        if isinstance(spec, dict):
            if key not in cfg:
                raise ConfigError(f"missing required config section '{dotted}'")
            out[key] = validate(cfg[key], spec, f"{dotted}.")
            continue
        if key not in cfg:
            if spec.required:
                raise ConfigError(f"missing required config key '{dotted}'")
            continue
        out[key] = _check_value(dotted, cfg[key], spec)
    return out


def positive(cfg: dict[str, Any], *dotted_keys: str) -> None:
    """Raise if any of the (present) dotted keys is not > 0."""
    for dotted in dotted_keys:
        node: Any = cfg
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None and node <= 0:
            raise ConfigError(f"config key '{dotted}' must be > 0, got {node!r}")
