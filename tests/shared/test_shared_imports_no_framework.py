"""shared/ is numpy-only: importing every module must not pull in torch or tensorflow."""

import pkgutil
import subprocess
import sys

import shared


def test_importing_every_shared_module_loads_neither_framework():
    modules = [f"shared.{m.name}" for m in pkgutil.iter_modules(shared.__path__)]
    assert len(modules) >= 8
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'tensorflow', 'keras', 'jax'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
