"""Read a resolved config mapping into frozen dataclasses, in one pass.

A settings dataclass mirrors one section of the YAML: its field names are the keys, its type
hints say what each value must be, its defaults are upstream DPPO's. `read(cls, raw, where)`
checks every key once and builds the dataclass; nested sections are dataclasses themselves.
Every problem is one ConfigError naming the dotted key. Keys that only upstream's Hydra
plumbing uses (`_target_`, `device`, ...) are accepted and ignored; any other unknown key is
an error, and so is a key a subclass names in its REFUSED_KEYS (an inherited field it has no use for).

Value checks beyond the type (> 0, in [0, 1], one of a set) are given per field with
`setting(default, check=...)`; checks that involve several keys live in the dataclass's
`__post_init__` and raise SettingError naming the key (reported with its dotted path), ConfigError
(reported as it is) or ValueError (reported with the section's name).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from shared.errors import ConfigError

T = TypeVar("T")
Check = Callable[[Any], "str | None"]  # returns a complaint ("must be > 0") or None

# Keys that only upstream's Hydra/agent plumbing reads; they never change our numbers.
PLUMBING_KEYS = frozenset({
    "_target_", "defaults", "hydra", "device", "render", "render_num", "save_video", "save_full_observations",
    "save_trajs", "best_reward_threshold_for_success", "furniture_sparse_reward", "log_freq", "train_dataset",
    "network_path", "traj_plotter", "name",
})

_REQUIRED = dataclasses.MISSING


class SettingError(ValueError):
    """A settings dataclass refusing one of its keys: `key` is relative to the dataclass (dotted
    for a key of a nested section), `problem` completes "config key '<dotted key>' ..."."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")
        self.key, self.problem = key, problem


def setting(default: Any = _REQUIRED, *, check: Check | None = None, doc: str = "") -> Any:
    """A dataclass field with an optional value check and a one-line description."""
    meta = {"check": check, "doc": doc}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def positive(value: Any) -> str | None:
    return None if value is None or value > 0 else "must be > 0"


def non_negative(value: Any) -> str | None:
    return None if value is None or value >= 0 else "must be >= 0"


MAX_SEED = 2**31 - 1  # every RNG the runs seed (numpy, torch, TF, gymnasium) takes it, with room for offsets


def seed_range(value: Any) -> str | None:
    return None if value is None or 0 <= value <= MAX_SEED else f"must be in [0, {MAX_SEED}]"


def unit_interval(value: Any) -> str | None:
    return None if value is None or 0.0 <= value <= 1.0 else "must be in [0, 1]"


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def dotted(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _type_name(tp: Any) -> str:
    if tp in (float, int, bool, str):
        return {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string"}[tp.__name__]
    if dataclasses.is_dataclass(tp) or tp in (dict, Mapping):
        return "a mapping"
    origin = typing.get_origin(tp)
    if origin is tuple:
        return "a list of strings" if typing.get_args(tp)[0] is str else "a list of integers"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, key: str) -> Any:
    """value checked and converted to type tp (ints widen to floats; lists become tuples)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"config key '{key}' must not be null")
        errors = []
        structured = [a for a in args if dataclasses.is_dataclass(a)]
        if isinstance(value, dict) and len(structured) == 1:  # a mapping can only mean the section
            return read(structured[0], value, key)
        if isinstance(value, dict) and structured:  # sections of several kinds: `_target_` names one
            return read(_by_target(structured, value, key), value, key)
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, key)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"config key '{key}' must be {_type_name(tp)}, got {value!r}")
    if value is None:
        raise ConfigError(f"config key '{key}' must not be null")
    if dataclasses.is_dataclass(tp):
        return read(tp, value, key)
    if tp is Any:
        return value
    if tp in (dict, Mapping) or origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return value
    if origin is tuple:
        item = typing.get_args(tp)[0]  # tuple[int, ...] or tuple[str, ...]
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, item) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"config key '{key}' must be {_type_name(tp)}, got {value!r}")
        return tuple(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string; upstream's configs rely on it
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"config key '{key}' must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"config key '{key}' must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return value
    raise TypeError(f"settings reader cannot read type {tp!r} (key {key})")


def _by_target(classes: list[type], raw: dict[str, Any], key: str) -> type:
    """The section class whose UPSTREAM_TARGETS holds raw's `_target_` (the first class when it has none)."""
    target = raw.get("_target_")
    if target is None:
        return classes[0]
    for cls in classes:
        if target in getattr(cls, "UPSTREAM_TARGETS", ()):
            return cls
    known = [t for cls in classes for t in getattr(cls, "UPSTREAM_TARGETS", ())]
    raise ConfigError(f"config key '{dotted(key, '_target_')}' {target!r} is not supported here; expected one of "
                      f"{', '.join(known)}")


def read(cls: type[T], raw: Any, where: str = "", given: dict[str, Any] | None = None) -> T:
    """Build settings dataclass cls from the mapping raw; where is the dotted path of raw.
    `given` holds fields already read by the caller (e.g. a section whose type depends on
    other keys); they are taken as they are."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config key '{where or '<root>'}' must be a mapping, got {raw!r}")
    if typing.get_origin(cls) in (typing.Union, types.UnionType):  # a union of sections: `_target_` names one
        cls = _by_target([a for a in typing.get_args(cls) if dataclasses.is_dataclass(a)], raw, where)
    targets = getattr(cls, "UPSTREAM_TARGETS", ())
    if targets and raw.get("_target_") is not None and raw["_target_"] not in targets:
        _by_target([cls], raw, where)  # names the one target this section takes
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    ignored = PLUMBING_KEYS | frozenset(getattr(cls, "IGNORED_KEYS", ()))
    refused = getattr(cls, "REFUSED_KEYS", {})  # inherited fields a subclass does not take: {key: problem}
    for key in raw:
        if key in refused:
            raise ConfigError(f"config key '{dotted(where, key)}' {refused[key]}")
        if key not in fields and key not in ignored:
            raise ConfigError(f"unknown config key '{dotted(where, key)}'")
    kwargs = dict(given or {})
    for name, f in fields.items():
        key = dotted(where, name)
        if name in kwargs:
            continue
        if name not in raw:
            if f.default is _REQUIRED and f.default_factory is _REQUIRED:
                what = "section" if dataclasses.is_dataclass(hints[name]) else "key"
                raise ConfigError(f"missing required config {what} '{key}'")
            continue
        value = _convert(hints[name], raw[name], key)
        check = f.metadata.get("check")
        complaint = check(value) if check else None
        if complaint:
            raise ConfigError(f"config key '{key}' {complaint}, got {raw[name]!r}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except SettingError as exc:
        raise ConfigError(f"config key '{dotted(where, exc.key)}' {exc.problem}") from None
    except ValueError as exc:
        raise ConfigError(f"config section '{where or '<root>'}': {exc}") from None

