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
Mesa's software rasterizer is deterministic; tests/shared/test_robomimic_images.py checks two processes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.checkpoint import atomic_write
from shared.data.robomimic_demos import (
    MAX_STEPS,
    PHASES,
    Episode,
    _write_npz,
    dataset_arrays,
    episode_seeds,
    run_episode,
)
from shared.errors import ConfigError


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
        while len(kept) < demos:
            if attempt >= limit:
                raise ConfigError(f"the {task} maker kept {len(kept)} of {demos} demonstrations in {attempt} attempts "
                                  f"(limit {limit})")
            reset_seed, rng = episode_seeds(seed, attempt)
            episode = run_episode(recorder, task, reset_seed, rng, MAX_STEPS[task])
            attempt += 1
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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_npz(out / "train.npz", train)
    _write_npz(out / "normalization.npz", norm)
    lengths = train["traj_lengths"]
    stats = {"task": task, "seed": seed, "demos": len(kept), "attempts": attempt,
             "maker_success_rate": len(kept) / attempt, "transitions": int(lengths.sum()),
             "length_mean": float(lengths.mean()), "length_min": int(lengths.min()), "length_max": int(lengths.max()),
             "low_dim_keys": list(proprio_keys(task)), "image_keys": list(env.image_keys),
             "image_shape": list(train["images"].shape[1:]), "render_quality": quality,
             "reset_seeds": [e.reset_seed for e in kept]}
    atomic_write(out / "stats.json", lambda tmp: Path(tmp).write_text(json.dumps(stats, indent=1) + "\n"))
    return ImageDemoSummary(task, len(kept), attempt, lengths, env.frames, rendering_seconds,
                            time.perf_counter() - start,
                            tuple(str(out / n) for n in ("train.npz", "normalization.npz", "stats.json")))
