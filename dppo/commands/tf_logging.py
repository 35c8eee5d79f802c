"""TensorFlow's C++ logging off the CLI's stderr, whichever code imports TF first.

TF 2.16+ prints start-up lines (oneDNN, CPU features, "All log messages before
absl::InitializeLog()") on file descriptor 2 while `import tensorflow` runs, whatever
TF_CPP_MIN_LOG_LEVEL says, and later INFO/WARNING lines (XLA compilation) unless it is >= 2.
The torch backend imports TF too (TensorBoard's writer does), so the CLI installs an import
hook: the first `import tensorflow`, from anywhere, runs with fd 2 pointed at /dev/null, and
TF_CPP_MIN_LOG_LEVEL defaults to 2. A user who sets TF_CPP_MIN_LOG_LEVEL to 0 or 1, or
DPPO_TF_VERBOSE, sees everything. Python exceptions raised by the import still propagate.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any


def wants_tf_logs() -> bool:
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "")
    return bool(os.environ.get("DPPO_TF_VERBOSE")) or level in ("0", "1")


@contextmanager
def stderr_to_devnull() -> Iterator[None]:
    """File descriptor 2 (what C++ code writes to) points at /dev/null inside the block."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of `tensorflow` with fd 2 silenced, then removes the finder."""

    def __init__(self, loader: Any, finder: _QuietTensorflowImport) -> None:
        self._loader, self._finder = loader, finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__.loader = module.__loader__ = self._loader
        try:
            with stderr_to_devnull():
                self._loader.exec_module(module)
        finally:
            if self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)


class _QuietTensorflowImport(importlib.abc.MetaPathFinder):
    """A meta path finder for the top-level `tensorflow` package only: the real spec, whose loader
    runs quietly. It stays until TF is imported (a mere find_spec, as torch does to see whether TF
    is installed, imports nothing)."""

    def __init__(self) -> None:
        self._finding = False

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname != "tensorflow" or self._finding:
            return None
        self._finding = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self)
        return spec


def quiet_tensorflow() -> None:
    """Call before anything imports TF (the CLI does, first thing)."""
    if wants_tf_logs():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorflowImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorflowImport())
