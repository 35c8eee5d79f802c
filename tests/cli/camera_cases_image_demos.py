"""`dppo data robomimic --images` and `dppo data frames`: the image demonstrations are the state maker's
episodes with the camera's frames beside the proprioception (upstream's image layout), the same bytes when
made again in another process (software rendering included), and the PNG grid holds exactly the stored
frames."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dppo.cli import main
from shared.data.robomimic_demos import make_demos
from shared.errors import DatasetError

FILES = ("train.npz", "normalization.npz", "stats.json")
SEED = 1
ARGS = ["data", "robomimic", "--task", "lift", "--demos", "1", "--seed", str(SEED), "--images"]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """The command run here and in a fresh process, and the state maker with the same seed."""
    root = tmp_path_factory.mktemp("image_demos")
    assert main([*ARGS, "--out", str(root / "here"), "--grid", str(root / "grid.png")]) == 0
    done = subprocess.run([sys.executable, "-m", "dppo.cli", *ARGS, "--out", str(root / "there")],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    make_demos("lift", 1, SEED, root / "states")
    return {"root": root, "stdout": done.stdout}


def test_the_command_reproduces_its_files_byte_for_byte_in_another_process(made) -> None:
    root = made["root"]
    for name in FILES:
        assert (root / "here" / name).read_bytes() == (root / "there" / name).read_bytes(), name
    assert "camera frames at" in made["stdout"] and "frames/s" in made["stdout"]


def test_images_sit_beside_the_proprio_states_of_the_state_makers_episodes(made) -> None:
    root = made["root"]
    with np.load(root / "here" / "train.npz") as img, np.load(root / "states" / "train.npz") as st, \
            np.load(root / "here" / "normalization.npz") as img_norm, \
            np.load(root / "states" / "normalization.npz") as st_norm:
        assert sorted(img.files) == ["actions", "images", "rewards", "states", "terminals", "traj_lengths"]
        n = int(img["traj_lengths"].sum())
        assert img["images"].shape == (n, 3, 96, 96) and img["images"].dtype == np.uint8
        assert img["states"].shape == (n, 9)
        # a camera changes nothing in the physics: the same episode, its first 9 state columns (the arm)
        np.testing.assert_array_equal(img["traj_lengths"], st["traj_lengths"])
        np.testing.assert_array_equal(img["states"], st["states"][:, :9])
        np.testing.assert_array_equal(img["actions"], st["actions"])
        np.testing.assert_array_equal(img["rewards"], st["rewards"])
        np.testing.assert_array_equal(img_norm["obs_min"], st_norm["obs_min"][:9])
        np.testing.assert_array_equal(img_norm["action_max"], st_norm["action_max"])
        first, last = img["images"][0].astype(int), img["images"][-1].astype(int)
    # the wrist camera: the red cube on the white table ahead of the fingers at the start, held between the
    # fingers at the bottom of the frame at the end
    red = lambda f: (f[0] > 100) & (f[0] > 2 * f[1]) & (f[0] > 2 * f[2])  # noqa: E731
    rows_first, rows_last = np.nonzero(red(first))[0], np.nonzero(red(last))[0]
    assert rows_first.size >= 20 and rows_last.size >= 20
    assert rows_first.mean() < 55 and rows_last.mean() > rows_first.mean() + 15
    stats = json.loads((root / "here" / "stats.json").read_text())
    assert stats["image_keys"] == ["robot0_eye_in_hand_image"] and stats["image_shape"] == [3, 96, 96]
    assert stats["low_dim_keys"] == ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"]


def test_the_grids_are_the_stored_frames(made, capsys) -> None:
    root = made["root"]
    with np.load(root / "here" / "train.npz") as data:
        images, length = data["images"], int(data["traj_lengths"][0])
    grid = np.asarray(Image.open(root / "grid.png").convert("RGB"))
    assert grid.shape == (192, 6 * 192 + 5 * 2, 3)  # one episode, 6 steps, zoom 2, 2-pixel borders
    np.testing.assert_array_equal(grid[::2, :192:2], images[0].transpose(1, 2, 0))  # the first step's frame
    np.testing.assert_array_equal(grid[::2, -192::2], images[length - 1].transpose(1, 2, 0))  # the last
    assert main(["data", "frames", "--dataset", str(root / "here"), "--out", str(root / "again.png"), "--rows", "1",
                 "--zoom", "2"]) == 0
    assert (root / "again.png").read_bytes() == (root / "grid.png").read_bytes()
    assert "1 rows of 6 steps, 1 camera(s) of 96x96" in capsys.readouterr().out


def test_grid_without_images_is_one_line(tmp_path, capsys) -> None:
    code = main(["data", "robomimic", "--task", "lift", "--demos", "1", "--out", str(tmp_path / "x"), "--grid",
                 str(tmp_path / "g.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "--grid shows camera frames: it needs --images" in err[0]


def test_an_image_dataset_is_made_on_first_use_checked_and_kept(made, tmp_path, monkeypatch, capsys) -> None:
    """Where upstream's image configs look (<data>/robomimic/<task>-img/): made by the command's code when
    missing, compared with its recorded checksums, reused afterwards; a different result is one error and
    leaves nothing behind."""
    import hashlib

    from shared.data import robomimic_image_demos as demos

    here = made["root"] / "here"
    sha = {name: hashlib.sha256((here / name).read_bytes()).hexdigest() for name in demos.IMAGE_DATASET_FILES}
    reference = demos.ImageDataset(1, SEED, "fast", sha["train.npz"], sha["normalization.npz"])
    monkeypatch.setattr(demos, "IMAGE_DATASETS", {"lift": reference})
    train = tmp_path / "robomimic" / "lift-img" / "train.npz"
    assert demos.ensure_image_dataset(train) == train
    assert "making the lift image dataset" in capsys.readouterr().err
    for name in (*demos.IMAGE_DATASET_FILES, "stats.json"):
        assert (train.parent / name).read_bytes() == (here / name).read_bytes()
    assert sorted(p.name for p in train.parent.iterdir()) == ["normalization.npz", "stats.json", "train.npz"]
    stamp = train.stat().st_mtime_ns
    assert demos.ensure_image_dataset(train.parent / "normalization.npz") and train.stat().st_mtime_ns == stamp
    other = tmp_path / "other" / "robomimic" / "transport-img" / "train.npz"  # no maker here: left to the reader
    assert demos.ensure_image_dataset(other) == other and not other.parent.exists()
    square = tmp_path / "other" / "robomimic" / "square-img" / "train.npz"  # a maker, no recorded dataset
    with pytest.raises(DatasetError, match="make them there with dppo data robomimic --task square --images --out"):
        demos.ensure_image_dataset(square)
    assert not square.parent.exists()

    monkeypatch.setattr(demos, "IMAGE_DATASETS", {"lift": demos.ImageDataset(1, SEED, "fast", "0" * 64,
                                                                            sha["normalization.npz"])})
    wrong = tmp_path / "wrong" / "lift-img" / "normalization.npz"
    with pytest.raises(DatasetError, match=r"differs from the recorded one \(train.npz sha256 .*, recorded 000000"):
        demos.ensure_image_dataset(wrong)
    assert list(wrong.parent.iterdir()) == []
