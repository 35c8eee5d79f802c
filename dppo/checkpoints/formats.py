"""Read a checkpoint in any of the three formats; write one in a chosen format.

canonical: .npz (shared/checkpoint.py); torch: .pt file; tf: directory with a
tf.train.Checkpoint and meta.json. Frameworks are imported only when needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shared.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from shared.errors import CheckpointError

FORMATS = ("canonical", "torch", "tf")


def detect_format(path: str | os.PathLike) -> str:
    path = Path(path)
    if path.is_dir():
        return "tf"
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix in (".pt", ".pth"):
        return "torch"
    return "canonical"


def read_checkpoint(path: str | os.PathLike, config: Any = None) -> Checkpoint:
    """A checkpoint in any format. An upstream irom-lab/dppo state_<n>.pt is imported on the fly
    when `config` (typed settings describing its architecture) is given."""
    fmt = detect_format(path)
    if fmt == "torch":
        from core_torch.runtime.checkpoint import load_torch_checkpoint
        from dppo.checkpoints.upstream import import_upstream, is_upstream_checkpoint

        if is_upstream_checkpoint(path):
            if config is None:
                raise CheckpointError(f"{path} is an upstream irom-lab/dppo checkpoint; import it with "
                                      f"`dppo convert --from-upstream {path} --config CONFIG --out OUT.npz`")
            return import_upstream(path, config)
        return load_torch_checkpoint(path)
    if fmt == "tf":
        from core_tf.runtime.checkpoint import load_tf_checkpoint

        return load_tf_checkpoint(path)
    return load_checkpoint(path)


def check_checkpoint_out(path: str | os.PathLike, fmt: str, option: str = "--out") -> None:
    """Refuse, before any work, an output path a checkpoint of format fmt cannot be written to: a
    file where the TF format's directory goes (or the reverse), a directory that is not a dppo TF
    checkpoint (writing would replace it whole), an unwritable or read-only place."""
    from dppo.runs.paths import check_output_file, check_parent_writable

    target = Path(path)
    if fmt != "tf":
        check_output_file(str(target), option)
        return
    if target.is_dir() and not (target / "meta.json").is_file():
        raise CheckpointError(f"{option} {target} is a directory but not a dppo TF checkpoint; refusing to replace it")
    if target.exists() and not target.is_dir():
        raise CheckpointError(f"{option} {target} is a file; --to tf writes a checkpoint directory")
    check_parent_writable(target, option)  # the new directory is written beside it, then renamed


def write_checkpoint(path: str | os.PathLike, ckpt: Checkpoint, fmt: str) -> None:
    """Write ckpt in format fmt (atomically); a failing write is one CheckpointError naming the path."""
    try:
        if fmt == "torch":
            from core_torch.runtime.checkpoint import save_torch_checkpoint

            save_torch_checkpoint(path, ckpt)
        elif fmt == "tf":
            from core_tf.runtime.checkpoint import save_tf_checkpoint

            save_tf_checkpoint(path, ckpt)
        elif fmt == "canonical":
            save_checkpoint(path, ckpt)
        else:
            raise CheckpointError(f"unknown checkpoint format {fmt!r}; choose one of {', '.join(FORMATS)}")
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
