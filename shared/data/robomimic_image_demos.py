"""Scripted robomimic demonstrations with camera frames, in upstream's image data layout.

The same makers and episodes as shared/data/robomimic_demos.py (a camera changes nothing in the physics:
an episode with cameras is the state episode of the same seed, step for step), run on the task's camera env
(`<task>-img` metadata: Lift and Can see through robot0_eye_in_hand, Square through agentview, 96x96), which
renders every camera at each step. The makers read the whole low-dimensional observation (the object's pose
included); the dataset keeps what upstream's image configs feed the policy:

  train.npz          states (N, Ds) the arm's proprioception (robot0_eef_pos, robot0_eef_quat,
                     robot0_gripper_qpos; upstream's image low_dim_keys) normalized to [-1, 1]; actions (N, Da)
                     normalized; images (N, 3 * cameras, H, W) uint8, upright, RGB, channels first, the frame
                     seen before each action (what agent/dataset/sequence.py reads beside `states`); rewards,
                     terminals, traj_lengths as in the state datasets
  normalization.npz  upstream's min/max of the proprioception and the actions (running from 0)
  stats.json         the state maker's stats plus the keys, the image shape and the render quality (no
                     timings: the three files are reproducible byte for byte)

Files are written with fixed archive dates, so the same command gives the same bytes (rendering included:
Mesa's software rasterizer is deterministic; tests/shared/camera_cases_images.py checks two processes).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.data.robomimic_demos import (
    PHASES,
    Episode,
    attempts,
    dataset_arrays,
    write_demo_folder,
)
from shared.errors import ConfigError, DatasetError


def proprio_keys(task: str) -> tuple[str, ...]:
    """upstream's low_dim_keys of the image configs (cfg/robomimic/*/<task>/*_img.yaml): the state keys less
    the object, which come first in the makers' observation."""
    from shared.data.robomimic import default_low_dim_keys

    return tuple(k for k in default_low_dim_keys(task) if k != "object")


class FrameRecorder:
    """A camera env seen as a state env by the makers: reset and step return the state (the full
    low-dimensional observation) and keep the frames, one per reset and step."""

    def __init__(self, env: Any) -> None:
        self.env, self.frames = env, []

    @property
    def robosuite_env(self) -> Any:
        return self.env.robosuite_env

    def reset(self, *, seed: int | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed)
        self.frames = [obs["rgb"]]
        return obs["state"], info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(obs["rgb"])
        return obs["state"], reward, terminated, truncated, info


@dataclass(frozen=True)
class ImageDemoSummary:
    task: str
    demos: int
    attempts: int
    lengths: np.ndarray  # (E,)
    frames: int  # camera frames rendered (every attempt's)
    episode_seconds: float  # wall time of the attempts (stepping and rendering)
    seconds: float  # wall time of the whole command's work
    paths: tuple[str, ...]

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.episode_seconds


def make_image_demos(task: str, demos: int, seed: int, out_dir: str | Path, quality: str = "fast",
                     progress: Callable[[str], None] | None = None) -> ImageDemoSummary:
    """Run the task's maker on its camera env until `demos` successful episodes; write train.npz (with
    images), normalization.npz and stats.json."""
    from shared.data.robomimic import default_low_dim_keys, make_robomimic_image_env

    if task not in PHASES:
        raise ConfigError(f"no demonstration maker for robomimic task {task!r}; choose one of {', '.join(PHASES)}")
    limit = 3 * demos + 20
    start = time.perf_counter()
    env = make_robomimic_image_env(task, low_dim_keys=default_low_dim_keys(task), model_seed=seed, quality=quality)
    recorder = FrameRecorder(env)
    rendering = time.perf_counter()  # frames/s counts the episodes, not the env's build
    raw = env.robosuite_env._get_observations()
    proprio = sum(np.size(raw[k]) for k in proprio_keys(task))  # Ds
    kept: list[Episode] = []
    images: list[np.ndarray] = []
    attempt = 0
    try:
        for attempt, episode in attempts(recorder, task, seed, demos, limit):
            if episode.success:
                kept.append(Episode(episode.reset_seed, episode.states[:, :proprio], episode.actions,
                                    episode.rewards, True))
                images.append(np.stack(recorder.frames[: len(episode.actions)]))  # (T, C, H, W), before each action
            if progress is not None:
                seconds = time.perf_counter() - rendering
                progress(f"{task} attempt {attempt}: {'kept' if episode.success else 'failed'} "
                         f"({len(episode.actions)} steps), {len(kept)}/{demos} kept, "
                         f"{env.frames / seconds:.1f} frames/s")
    finally:
        env.close()
    rendering_seconds = time.perf_counter() - rendering
    train, norm = dataset_arrays(kept)
    train["images"] = np.concatenate(images)  # (N, C, H, W) uint8
    out, lengths = write_demo_folder(out_dir, train, norm, task, seed, kept, attempt, {
        "low_dim_keys": list(proprio_keys(task)), "image_keys": list(env.image_keys),
        "image_shape": list(train["images"].shape[1:]), "render_quality": quality})
    return ImageDemoSummary(task, len(kept), attempt, lengths, env.frames, rendering_seconds,
                            time.perf_counter() - start,
                            tuple(str(out / n) for n in ("train.npz", "normalization.npz", "stats.json")))


@dataclass(frozen=True)
class ImageDataset:
    """An image dataset made on first use: the command's arguments and the sha256 of the files it made here
    (docs/guide/robomimic_images.md)."""

    demos: int
    seed: int
    quality: str
    train_sha256: str
    normalization_sha256: str


# Too large to ship (50 Lift demonstrations: 19 MB of compressed frames), so made where upstream's image
# configs look for them (<data>/robomimic/<task>-img/) the first time a run reads them.
IMAGE_DATASETS: dict[str, ImageDataset] = {
    "lift": ImageDataset(50, 0, "fast", "4111172d87ed7c86e90d7f5c2d4cfd4aa9b7ad0aebe2219e688b3f33763977db",
                         "0ccfb2dcd6b347be9f25f0e1ab767d7286046a5e974af66630c958e8fc29da0b"),
}
IMAGE_DATASET_FILES = ("train.npz", "normalization.npz")


def ensure_image_dataset(path: str | Path) -> Path:
    """`path` as it is, unless it is a missing train.npz or normalization.npz of an image dataset made on first
    use (`<...>/<task>-img/` for a task of IMAGE_DATASETS): then the dataset is made there first (minutes: every
    step is rendered), checked byte for byte against its recorded checksums, and kept for later runs. A missing one
    of another task with a scripted maker (Can, Square) is one error naming the command that makes it there."""
    path = Path(path)
    folder = path.parent
    task = folder.name.removesuffix("-img")
    if path.exists() or path.name not in IMAGE_DATASET_FILES or not folder.name.endswith("-img"):
        return path
    if task not in IMAGE_DATASETS:
        if task in PHASES:  # a maker exists, but the dataset is not one made on first use: the command that makes it
            raise DatasetError(f"{path} not found: the {task} image demonstrations are not made on first use (only "
                               f"{', '.join(IMAGE_DATASETS)}'s are); make them there with dppo data robomimic --task "
                               f"{task} --images --out {folder}")
        return path
    ref = IMAGE_DATASETS[task]
    print(f"making the {task} image dataset in {folder} on first use ({ref.demos} rendered demonstrations, seed "
          f"{ref.seed}: dppo data robomimic --task {task} --images --demos {ref.demos} --seed {ref.seed})",
          file=sys.stderr, flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".making-") as tmp:
        make_image_demos(task, ref.demos, ref.seed, tmp, ref.quality)
        for name, expected in zip(IMAGE_DATASET_FILES, (ref.train_sha256, ref.normalization_sha256)):
            made = hashlib.sha256((Path(tmp) / name).read_bytes()).hexdigest()
            if made != expected:
                raise DatasetError(f"the {task} image dataset made here differs from the recorded one ({name} sha256 "
                                   f"{made[:12]}, recorded {expected[:12]}): this machine renders or simulates "
                                   f"differently; make it by hand with dppo data robomimic --images to use it anyway")
        for name in (*IMAGE_DATASET_FILES, "stats.json"):
            shutil.move(str(Path(tmp) / name), str(folder / name))
    return path
