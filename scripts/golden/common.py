"""What every golden-fixture section shares: the upstream checkout on sys.path, seeded inputs,
noise injection into upstream's samplers, the float32 / float64 double run and the fixture writer.

A section module exposes `build(ctx: Context) -> None` and records cases with `ctx.case(...)`.
Nothing here is imported by the tests: CI reads only the npz files and manifest.json.
"""

from __future__ import annotations

import contextlib
import importlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dppo.interop.upstream_code import (  # noqa: F401 (the sections import them from here)
    PINNED_COMMIT,
    NoiseProxy,
    activate_upstream,
    load_weights,
    stub_module,
    upstream_commit,
    upstream_dirty,
)

# ---------------------------------------------------------------- float32 / float64 runs


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
            if not isinstance(mod.__dict__.get("torch"), NoiseProxy):
                mod.torch = NoiseProxy(torch, self)  # the context is its noise source

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


def f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)
