"""TensorFlow-native checkpoint: a directory with a tf.train.Checkpoint and meta.json.

Variables sit under `<group>/<canonical name>`, so conversion is a copy.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np
import tensorflow as tf

from shared.checkpoint import Checkpoint, check_meta
from shared.errors import CheckpointError
from shared.temp_dirs import make_temp_dir

_PREFIX = "ckpt"
_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def _unescape(name: str) -> str:
    """Undo tf.train.Checkpoint's key escaping ('.' -> '..', '/' -> '.S')."""
    out, i = [], 0
    while i < len(name):
        if name[i] == "." and i + 1 < len(name):
            out.append({".": ".", "S": "/"}.get(name[i + 1], name[i + 1]))
            i += 2
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


def save_tf_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(path.parent, f".{path.name}.")
    try:
        root = tf.Module()
        for group, tensors in ckpt.groups.items():
            setattr(root, group, {k: tf.Variable(np.array(v)) for k, v in tensors.items()})
        tf.train.Checkpoint(root=root).write(str(tmp / _PREFIX))
        (tmp / "meta.json").write_text(json.dumps(dict(ckpt.meta, framework_native="tf"), sort_keys=True))
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_tf_checkpoint(path: str | os.PathLike) -> Checkpoint:
    path = Path(path)
    if not (path / "meta.json").is_file() or not (path / f"{_PREFIX}.index").is_file():
        raise CheckpointError(f"{path} is not a dppo TF checkpoint directory (needs meta.json and {_PREFIX}.index)")
    try:
        reader = tf.train.load_checkpoint(str(path / _PREFIX))
        meta = json.loads((path / "meta.json").read_text())
    except Exception as exc:
        raise CheckpointError(f"cannot read TF checkpoint {path}: {exc}") from None
    groups: dict[str, OrderedDict] = {}
    for key in sorted(reader.get_variable_to_shape_map()):
        if not key.endswith(_SUFFIX):
            continue
        group, _, name = key[: -len(_SUFFIX)].partition("/")
        groups.setdefault(_unescape(group), OrderedDict())[_unescape(name)] = reader.get_tensor(key)
    check_meta(meta, path)
    meta.pop("framework_native", None)
    return Checkpoint(groups=groups, meta=meta)
