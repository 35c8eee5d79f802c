"""What every golden-fixture section shares: the upstream checkout on sys.path, seeded inputs,
noise injection into upstream's samplers, the float32 / float64 double run and the fixture writer.

A section module exposes `build(ctx: Context) -> None` and records cases with `ctx.case(...)`.
Nothing here is imported by the tests: CI reads only the npz files and manifest.json.
"""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
import types
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PINNED_COMMIT = "7b10df690d54f3d29524f20daa8cf78288a21a9b"


# ---------------------------------------------------------------- upstream checkout


def upstream_commit(upstream: Path) -> str:
    out = subprocess.run(["git", "-C", str(upstream), "rev-parse", "HEAD"], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def upstream_dirty(upstream: Path) -> bool:
    out = subprocess.run(["git", "-C", str(upstream), "status", "--porcelain", "--untracked-files=no"],
                         capture_output=True, text=True, check=True)
    return bool(out.stdout.strip())


def _stub_module(name: str, **attrs: Any) -> None:
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
        return
    except ImportError:
        pass
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod


def activate_upstream(upstream: Path) -> None:
    """Put the checkout first on sys.path and stub the imports only upstream's drivers need.

    wandb and hydra are only used by upstream's agents/configs; we call none of their functions.
    d4rl and gym are stubbed by the d4rl section itself (it drives the script on a synthetic dict).
    """
    sys.path.insert(0, str(upstream))
    _stub_module("wandb")
    _stub_module("hydra", main=lambda *a, **k: (lambda f: f), utils=types.SimpleNamespace())


# ---------------------------------------------------------------- float32 / float64 runs


class TorchProxy:
    """Stands in for the `torch` name inside one upstream module.

    randn / randn_like / randint pop pre-drawn arrays from `queue` (checked for shape) instead of
    drawing; in float64 mode `torch.float32` reads as float64, so upstream's explicit casts of its
    DDIM tables do not drop the float64 run back to float32. Everything else is real torch.
    """

    def __init__(self, torch_mod: Any, ctx: Context) -> None:
        self._torch = torch_mod
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        if name == "float32" and self._ctx.float64:
            return self._torch.float64
        return getattr(self._torch, name)

    def _pop(self, shape: tuple[int, ...], dtype: Any, what: str) -> Any:
        if not self._ctx.queue:
            raise RuntimeError(f"upstream drew {what}{list(shape)} but the noise queue is empty")
        arr = self._ctx.queue.popleft()
        if tuple(arr.shape) != tuple(shape):
            raise RuntimeError(f"upstream drew {what}{list(shape)}, next injected array is {list(arr.shape)}")
        return self._torch.from_numpy(np.array(arr)).to(dtype)

    def randn(self, *size: Any, **kw: Any) -> Any:
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
        return self._pop(shape, self._torch.get_default_dtype(), "randn")

    def randn_like(self, x: Any, **kw: Any) -> Any:
        return self._pop(tuple(x.shape), x.dtype, "randn_like")

    def randint(self, low: int, high: int, size: Any, **kw: Any) -> Any:
        return self._pop(tuple(size), self._torch.int64, "randint")


@dataclass
class Context:
    upstream: Path
    seed: int = 0
    float64: bool = False
    queue: deque = field(default_factory=deque)
    sections: dict[str, OrderedDict] = field(default_factory=dict)
    manifest: dict[str, dict] = field(default_factory=dict)
    current: str = ""

    # ---- randomness
    def rng(self, tag: str) -> np.random.Generator:
        """A generator seeded by (seed, tag): each case's inputs do not depend on the order of cases."""
        return np.random.default_rng([self.seed, *tag.encode()])

    # ---- noise injection
    def inject(self, *module_names: str) -> None:
        import torch

        for name in module_names:
            mod = importlib.import_module(name)
            if not isinstance(mod.__dict__.get("torch"), TorchProxy):
                mod.torch = TorchProxy(torch, self)

    @contextlib.contextmanager
    def precision(self, float64: bool, noise: list[np.ndarray]) -> Iterator[None]:
        """Run upstream in float32 or float64 (default dtype switched, so upstream's tables, parameters
        and torch.ones/zeros/full follow), with `noise` queued for its random draws; checks all were used."""
        import torch
        from model.diffusion.sampling import cosine_beta_schedule

        old = torch.get_default_dtype()
        old_defaults = cosine_beta_schedule.__defaults__
        self.float64 = float64
        self.queue = deque(noise)
        torch.set_default_dtype(torch.float64 if float64 else torch.float32)
        if float64:
            # its `dtype=torch.float32` default was bound at import, out of the proxy's reach: without this the
            # float64 run would build every DDPM table from float32 betas in float32, and the measured rounding
            # (up32 - up64) would miss what the tables' float32 rounding does to upstream's outputs
            cosine_beta_schedule.__defaults__ = (old_defaults[0], torch.float64)
        try:
            yield
            if self.queue:
                raise RuntimeError(f"{len(self.queue)} injected noise arrays were not consumed")
        finally:
            torch.set_default_dtype(old)
            cosine_beta_schedule.__defaults__ = old_defaults
            self.float64 = False
            self.queue = deque()

    def double_run(self, run: Callable[[bool], dict[str, np.ndarray]],
                   noise: list[np.ndarray] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """run(float64) builds upstream objects and returns numpy outputs; called once per precision."""
        out = {}
        for f64 in (False, True):
            with self.precision(f64, list(noise or [])):
                out[f64] = {k: np.asarray(v) for k, v in run(f64).items()}
        return out[False], out[True]

    # ---- recording
    def case(self, name: str, meta: dict, inputs: dict[str, np.ndarray], up32: dict[str, np.ndarray],
             up64: dict[str, np.ndarray] | None = None) -> None:
        """Store one case: inputs as given, upstream's float32 outputs (`up32/`) and float64 (`up64/`)."""
        arrays = self.sections.setdefault(self.current, OrderedDict())
        for group, values in (("in", inputs), ("up32", up32), ("up64", up64 or {})):
            for key, value in values.items():
                value = np.asarray(value)
                if group == "up32" and value.dtype == np.float64:
                    value = value.astype(np.float32)
                arrays[f"{name}/{group}/{key}"] = value
        self.manifest.setdefault(self.current, {})[name] = meta

    def write(self, out: Path) -> dict[str, int]:
        out.mkdir(parents=True, exist_ok=True)
        sizes = {}
        for section, arrays in self.sections.items():
            path = out / f"{section}.npz"
            np.savez_compressed(path, **arrays)
            sizes[section] = path.stat().st_size
        return sizes


def to_np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def load_weights(module: Any, params: dict[str, np.ndarray], prefix_map: dict[str, str] | None = None) -> None:
    """Copy canonical float32 params into an upstream module, in the module's own dtype.

    prefix_map maps upstream name prefixes to canonical ones (e.g. {"network.": ""}); upstream tensors
    that are not learned (Gaussian_MLP's logvar_min/max) keep their values; every canonical param must land.
    """
    import torch

    state = module.state_dict()
    used = set()
    with torch.no_grad():
        for up_name, tensor in state.items():
            name = up_name
            for up_prefix, ours in (prefix_map or {}).items():
                if up_name.startswith(up_prefix):
                    name = ours + up_name[len(up_prefix):]
                    break
            if name in params:
                tensor.copy_(torch.from_numpy(params[name]).to(tensor.dtype))
                used.add(name)
    missing = set(params) - used
    if missing:
        raise RuntimeError(f"canonical params not found upstream: {sorted(missing)}")


def f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)
