"""A torch-only install (no tensorflow package) runs `--backend torch`: nothing on the torch path imports TF."""

import subprocess
import sys
import textwrap


def test_torch_scalar_writer_does_not_import_tensorflow_when_it_is_not_installed(tmp_path):
    # a child process where tensorflow cannot be found or imported, as on a machine without it
    code = textwrap.dedent(f"""
        import sys
        sys.modules["tensorflow"] = None  # import tensorflow raises ImportError; find_spec finds nothing
        from pathlib import Path
        from dppo.runs.tensorboard import ScalarWriter
        w = ScalarWriter(Path({str(tmp_path)!r}), "torch")
        w.scalars(0, {{"train/loss": 1.0}})
        assert sys.modules["tensorflow"] is None and "core_tf" not in sys.modules
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
    assert any(p.name.startswith("events.out.tfevents") for p in tmp_path.iterdir())
