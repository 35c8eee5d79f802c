"""`dppo export --format onnx`: a checkpoint of either framework as two ONNX graphs run by onnxruntime
(or any ONNX runtime), exported from the torch twin with torch.onnx (dynamo), the batch dimension dynamic:

    OUT/<version>/deterministic.onnx   state [B, To, Do], noise [B, S+1, Ta, Da] -> action [B, act_steps, Da]
    OUT/<version>/sample.onnx          state [B, To, Do], noise [B, S+1, Ta, Da] -> action_chunk [B, Ta, Da]
    OUT/<version>/signature.json       the shapes, the noise layout and where the graphs came from

Both take raw observations and return environment actions (the normalization is in the graph), like the
SavedModel's `serving_default` and `sample` signatures. ONNX has no seedable generator that every runtime
draws the same numbers from, so the deterministic graph takes its noise too: give it
`core_tf.runtime.export.default_noise(B, shape)` (transposed to batch first) and it returns what the
SavedModel's `serving_default` does; any other noise gives another, equally deterministic, evaluation action.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dppo.interop.export import PolicyToExport, next_version, read_policy
from shared.errors import ConfigError, UserError
from shared.temp_dirs import make_temp_dir

GRAPHS = {"deterministic": ("action", True), "sample": ("action_chunk", False)}


def torch_policy(p: PolicyToExport, deterministic: bool) -> Any:
    """A torch module: raw state (B, To, Do), noise (B, S+1, Ta, Da) -> environment actions, as the
    SavedModel computes them (core_tf/runtime/export.py)."""
    import torch

    import core_torch.runtime.canonical as torch_io

    if p.serving == "policy":
        from core_torch.diffusion.model import DiffusionModel

        policy = DiffusionModel(p.diffusion)
        torch_io.load_state(policy, p.weights, p.path)
        min_std = p.min_std

        def chain(state: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
            if deterministic:
                return policy.sample(state, noise, deterministic=True).trajectories
            return policy.sample(state, noise, deterministic=False, min_sampling_std=min_std).trajectories
    else:
        from core_torch.algorithms.ppo_diffusion import PPODiffusionModel

        policy = PPODiffusionModel(p.diffusion, p.cfg.critic, p.cfg.dppo)
        torch_io.load_state(policy, p.weights, p.path)
        policy.check_fixed_eta()
        if p.schedule is not None:
            policy.load_schedule_state(p.schedule)

        def chain(state: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
            return policy.sample(state, noise, deterministic)[0]

    f32 = np.float32
    norm, act_steps = p.norm, p.shape.act_steps

    class Policy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.policy = policy
            for name, value in (("obs_min", norm.obs_min), ("obs_max", norm.obs_max),
                                ("act_min", norm.action_min), ("act_max", norm.action_max)):
                self.register_buffer(name, torch.from_numpy(np.asarray(value, f32)))

        def forward(self, state: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
            s = 2.0 * ((state - self.obs_min) / (self.obs_max - self.obs_min + 1e-6) - 0.5)
            x = chain(s, noise.transpose(0, 1))  # the twins take noise step-major: (S+1, B, Ta, Da)
            a = (x + 1.0) / 2.0 * (self.act_max - self.act_min) + self.act_min
            return a[:, :act_steps] if deterministic else a

    return Policy().eval()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch.onnx reports its progress and every torchvision op it skips on stdout and through logging:
    none of it is the user's business when the export succeeds (a failure still raises)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_onnx(ckpt_path: str, out_dir: str, version: int | None = None, normalization_path: str | None = None,
                act_steps: int | None = None) -> Path:
    """Write out_dir/<version>/{deterministic,sample}.onnx and signature.json atomically; an existing version
    is never overwritten."""
    try:
        import onnxruntime  # noqa: F401  (the graphs are checked with it before they are kept)
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError as exc:
        raise UserError(f"ONNX export needs onnx, onnxscript and onnxruntime ({exc.name} is missing): "
                        "pip install onnx onnxscript onnxruntime") from None
    import torch

    p = read_policy(ckpt_path, normalization_path, act_steps)
    out = Path(out_dir)
    version = version if version is not None else next_version(out)
    target = out / str(version)
    if target.exists():
        raise ConfigError(f"{target} already exists; versions are immutable, pick another --version")
    s = p.shape
    out.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out, f".{version}.")
    try:
        state = torch.zeros(2, s.cond_steps, s.obs_dim)
        noise = torch.zeros(2, s.num_steps + 1, s.horizon_steps, s.action_dim)
        batch = torch.export.Dim("batch")
        for name, (output, deterministic) in GRAPHS.items():
            with _quiet_exporter():
                torch.onnx.export(torch_policy(p, deterministic), (state, noise), str(tmp / f"{name}.onnx"),
                                  dynamo=True, input_names=["state", "noise"], output_names=[output],
                                  dynamic_shapes={"state": {0: batch}, "noise": {0: batch}}, verbose=False,
                                  external_data=False)
        (tmp / "signature.json").write_text(json.dumps({
            "checkpoint": str(ckpt_path), "serves": p.serving,
            "inputs": {"state": ["batch", s.cond_steps, s.obs_dim],
                       "noise": ["batch", s.num_steps + 1, s.horizon_steps, s.action_dim]},
            "outputs": {"deterministic.onnx": {"action": ["batch", s.act_steps, s.action_dim]},
                        "sample.onnx": {"action_chunk": ["batch", s.horizon_steps, s.action_dim]}},
            "noise": "standard normal, batch first; deterministic.onnx with core_tf.runtime.export.default_noise "
                     "returns the SavedModel's serving_default action"}, indent=1))
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class OnnxPolicy:
    """Both graphs of an export in onnxruntime sessions, on numpy arrays."""

    def __init__(self, export_dir: str | os.PathLike) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # no constant-folding notes about Mish
        self.sessions = {name: ort.InferenceSession(str(Path(export_dir) / f"{name}.onnx"), options,
                                                    providers=["CPUExecutionProvider"]) for name in GRAPHS}

    def run(self, graph: str, state: np.ndarray, noise: np.ndarray) -> np.ndarray:
        return self.sessions[graph].run(None, {"state": np.asarray(state, np.float32),
                                               "noise": np.asarray(noise, np.float32)})[0]
