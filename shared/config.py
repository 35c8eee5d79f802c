"""YAML configs: load with OmegaConf, resolve interpolations, apply overrides.

Upstream DPPO configs use `${eval:'...'}` for arithmetic; it is supported here for
plain arithmetic only (numbers, + - * / // % **, parentheses), never for code.
"""

from __future__ import annotations

import ast
import operator
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
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


if not OmegaConf.has_resolver("eval"):
    _register = getattr(OmegaConf, "register_resolver", None) or OmegaConf.register_new_resolver
    _register("eval", eval_arithmetic)


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Load, override (`a.b=value` dotlist) and resolve a config into a plain dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:
        raise ConfigError(f"cannot parse config {path}: {exc}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"config {path} must be a mapping at top level")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
    try:
        if overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except ConfigError:
        raise
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        where = f" at key '{key}'" if key else ""
        message = str(exc).splitlines()[0]
        raise ConfigError(f"config {path}{where}: {message}") from None
    for drop in ("defaults", "hydra", "_target_"):
        resolved.pop(drop, None)
    return resolved
