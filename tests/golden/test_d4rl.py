"""shared/data/d4rl.py conversion against upstream get_d4rl_dataset.make_dataset on a synthetic D4RL dict."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from shared.data.d4rl import convert_d4rl_hdf5
from tests.golden.golden import Case, assert_matches_upstream


def test_d4rl_conversion_matches_upstream_script(tmp_path: Path) -> None:
    case = Case("d4rl", "synthetic")
    with h5py.File(tmp_path / "data.hdf5", "w") as f:
        for key, value in case.inp.items():
            f[key] = value
    convert_d4rl_hdf5(tmp_path / "data.hdf5", tmp_path / "out")
    for group, file in (("train", "train.npz"), ("norm", "normalization.npz")):
        with np.load(tmp_path / "out" / file) as z:
            ours = {k: z[k] for k in z.files}
        keys = [k for k in case.up32 if k.startswith(group + "/")]
        assert {k.split("/", 1)[1] for k in keys} <= set(ours), f"{file} lacks upstream's keys"
        for key in keys:
            up = case.up32[key]
            mine = ours[key.split("/", 1)[1]]
            if up.dtype == bool or mine.dtype == bool:
                np.testing.assert_array_equal(mine.astype(bool), up.astype(bool), err_msg=key)
            else:
                assert_matches_upstream(mine, case, key, "shared")
