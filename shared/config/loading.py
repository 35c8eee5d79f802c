"""YAML configs: load with OmegaConf, resolve interpolations, apply overrides.

Upstream DPPO's config files load unchanged:
- `${eval:'...'}` is supported for plain arithmetic only (numbers, + - * / // % **, parentheses),
  never for code;
- `${now:FORMAT}` is the time the config was loaded (strftime), as Hydra resolves it;
- `${oc.env:VAR}` reads the environment; the variables upstream's files use have defaults
  (DPPO_DATA_DIR=data, DPPO_LOG_DIR=runs, DPPO_WANDB_ENTITY=null, which leaves wandb off), any
  other unset variable without a default is one clear error;
- `defaults`, `hydra` and the top-level `_target_` are Hydra plumbing; `read_config` (shared/
  settings) uses `_target_` to tell the config's kind and ignores the rest.
"""

from __future__ import annotations

import ast
import datetime
import operator
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from shared.errors import ConfigError

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def eval_arithmetic(expr: str) -> int | float:
    def walk(node: ast.AST) -> int | float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        raise ConfigError(f"${{eval:...}} supports arithmetic only, got {expr!r}")

    try:
        tree = ast.parse(str(expr), mode="eval")
    except SyntaxError:
        raise ConfigError(f"${{eval:...}} cannot parse {expr!r}") from None
    return walk(tree)


ENV_DEFAULTS = {"DPPO_DATA_DIR": "data", "DPPO_LOG_DIR": "runs", "DPPO_WANDB_ENTITY": None}
_NO_DEFAULT = object()
_LOAD_TIME = [datetime.datetime.now()]


def env_value(name: str, default: Any = _NO_DEFAULT) -> Any:
    """`${oc.env:NAME[,default]}`: the environment, else the default, else ENV_DEFAULTS."""
    if name in os.environ:
        return os.environ[name]
    if default is not _NO_DEFAULT:
        return default
    if name in ENV_DEFAULTS:
        return ENV_DEFAULTS[name]
    raise ConfigError(f"environment variable {name} is not set (the config reads it with ${{oc.env:{name}}})")


def now(fmt: str = "%Y-%m-%d_%H-%M-%S") -> str:
    """`${now:FORMAT}`: the time the config was loaded, as Hydra's resolver."""
    return _LOAD_TIME[0].strftime(fmt)


_register = getattr(OmegaConf, "register_resolver", None) or OmegaConf.register_new_resolver
_register("eval", eval_arithmetic, replace=True)
_register("now", now, replace=True)
_register("oc.env", env_value, replace=True)


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Load, override (`a.b=value` dotlist) and resolve a config into a plain dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        cfg = OmegaConf.load(path)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(f"cannot parse config {path}: {yaml_problem(exc)}") from None
    except Exception as exc:
        raise ConfigError(f"cannot parse config {path}: {one_line(str(exc))}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"config {path} must be a mapping at top level")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        try:
            OmegaConf.from_dotlist([item])
        except yaml.MarkedYAMLError as exc:
            raise ConfigError(f"cannot parse override {item!r}: {yaml_problem(exc)}") from None
        except Exception as exc:
            raise ConfigError(f"cannot parse override {item!r}: {one_line(str(exc))}") from None
    _LOAD_TIME[0] = datetime.datetime.now()
    try:
        if overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except ConfigError:
        raise
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        blamed = _blame_interpolated_key(cfg, key) if key else None
        if blamed:
            raise ConfigError(blamed) from None
        where = f" at key '{key}'" if key else ""
        message = str(exc).splitlines()[0]
        raise ConfigError(f"config {path}{where}: {message}") from None
    for drop in ("defaults", "hydra"):
        resolved.pop(drop, None)
    return resolved


def one_line(text: str) -> str:
    return " ".join(text.split())


def yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """A YAML syntax error as one phrase: where (1-based line and column) and what, and where the
    construct it broke started."""
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    what = one_line(exc.problem or exc.context or "invalid YAML")
    context = ""
    if exc.context and exc.problem:
        started = exc.context_mark
        at = f" at line {started.line + 1}, column {started.column + 1}" if started else ""
        context = f" ({one_line(exc.context)}{at})"
    return f"{where}{what}{context}"


_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def _unresolved(cfg: DictConfig, key: str) -> Any:
    """The value at dotted `key` as written (interpolations not resolved), or None."""
    node: Any = OmegaConf.to_container(cfg, resolve=False)
    for part in re.findall(r"[^.\[\]]+", key):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _blame_interpolated_key(cfg: DictConfig, key: str, depth: int = 0) -> str | None:
    """When resolving `key` failed inside `${eval:...}` arithmetic, the key it reads that holds no
    number is the one to name (e.g. obs_dim={a: 1} breaks model.network.cond_dim's
    `${eval:'${obs_dim} * ${cond_steps}'}`). None when no such key is found."""
    text = _unresolved(cfg, key)
    if depth > 10 or not isinstance(text, str) or "${eval:" not in text:
        return None
    for ref in _REFERENCE.findall(text):
        try:
            value = OmegaConf.select(cfg, ref)
        except OmegaConfBaseException:
            return _blame_interpolated_key(cfg, ref, depth + 1)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            shown = OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
            return f"config key '{ref}' must be a number, got {shown!r} ('{key}' computes {text} from it)"
    return None


SUITE_DATA_DIRS = ("gym", "robomimic")  # upstream's <data>/<suite>/<env>/ folders


def locate_data_file(path: str | os.PathLike) -> Path:
    """path if it exists, else the same file in the other data layout: upstream keeps
    `<data>/<suite>/<env>/<file>` (suite gym or robomimic), this project `<data>/<env>/<file>`."""
    path = Path(path)
    if path.exists() or len(path.parts) < 2:
        return path
    env_dir = path.parent
    if env_dir.parent.name in SUITE_DATA_DIRS:
        others = [env_dir.parent.parent / env_dir.name / path.name]
    else:
        others = [env_dir.parent / suite / env_dir.name / path.name for suite in SUITE_DATA_DIRS]
    return next((other for other in others if other.exists()), path)
