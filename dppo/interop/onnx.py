"""`dppo export --format onnx`: a checkpoint of either framework as two ONNX graphs run by onnxruntime
(or any ONNX runtime), exported from the torch twin with torch.onnx (dynamo), the batch dimension dynamic:

    OUT/<version>/deterministic.onnx   state [B, To, Do] (+ a diffusion chain's noise) -> action [B, act_steps, Da]
    OUT/<version>/sample.onnx          state [B, To, Do] + the kind's noise -> action_chunk [B, Ta, Da]
    OUT/<version>/signature.json       the kind, the shapes, each graph's inputs, the noise layout and where the
                                       graphs came from

Both take raw observations and return environment actions (the normalization is in the graph), like the
SavedModel's `serving_default` and `sample` signatures, with the same noise inputs (shared/serving.py: a diffusion
chain's noise [B, S+1, Ta, Da]; a Gaussian's noise [B, Ta, Da]; a GMM's noise [B, Ta, Da] and mode_uniform [B]).
ONNX has no seedable generator that every runtime draws the same numbers from, so a diffusion policy's
deterministic graph takes its noise too: give it `core_tf.runtime.export.default_noise(B, shape)` (transposed to
batch first) and it returns what the SavedModel's `serving_default` does; any other noise gives another, equally
deterministic, evaluation action. A Gaussian or GMM policy's deterministic graph takes the state alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dppo.interop.export import PolicyToExport, next_version, read_policy
from shared.errors import ConfigError, UserError
from shared.serving import PolicyShape, ServedInput
from shared.temp_dirs import make_temp_dir

GRAPHS = {"deterministic": ("action", True), "sample": ("action_chunk", False)}


def _torch_diffusion(p: PolicyToExport) -> tuple[Any, Callable]:
    """A diffusion policy's chain (a DPPO run's base actor and actor_ft) on batch-first noise (B, S+1, Ta, Da)."""
    import torch

    import core_torch.runtime.canonical as torch_io

    if p.serving == "policy":
        from core_torch.diffusion.model import DiffusionModel

        policy = DiffusionModel(p.diffusion)
        torch_io.load_state(policy, p.weights, p.path)
        min_std = p.min_std

        def chain(state: torch.Tensor, noise: torch.Tensor, deterministic: bool) -> torch.Tensor:
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

        def chain(state: torch.Tensor, noise: torch.Tensor, deterministic: bool) -> torch.Tensor:
            return policy.sample(state, noise, deterministic)[0]

    def sampler(state: torch.Tensor, inputs: tuple, deterministic: bool) -> torch.Tensor:
        return chain(state, inputs[0].transpose(0, 1), deterministic)  # the twins take noise (S+1, B, Ta, Da)

    return policy, sampler


def _torch_network(p: PolicyToExport) -> Any:
    import core_torch.runtime.canonical as torch_io
    from core_torch.networks.registry import build_network

    network = build_network(p.network)
    torch_io.load_state(network, p.weights, p.path)
    return network.eval()  # no dropout (a transformer's)


def _torch_gaussian(p: PolicyToExport) -> tuple[Any, Callable]:
    """A Gaussian policy: its mean, or mean + std * clip(noise) (upstream GaussianModel)."""
    network, c = _torch_network(p), p.randn_clip_value

    def sampler(state: Any, inputs: tuple, deterministic: bool) -> Any:
        mean, std = network(state)  # (B, Ta * Da) each
        x = mean if deterministic else mean + std * inputs[0].flatten(1).clamp(-c, c)
        return x.reshape(-1, p.shape.horizon_steps, p.shape.action_dim)

    return network, sampler


def _torch_gmm(p: PolicyToExport) -> tuple[Any, Callable]:
    """A GMM policy: its likeliest mode's mean, or the mode mode_uniform picks plus its std * noise."""
    from core_torch.algorithms.gmm import likeliest_mean, sample_mixture

    network = _torch_network(p)

    def sampler(state: Any, inputs: tuple, deterministic: bool) -> Any:
        means, stds, logits = network(state)  # (B, M, Ta * Da), (B, M, Ta * Da), (B, M)
        if deterministic:
            x = likeliest_mean(means, logits)
        else:
            # flatten, not reshape(len(...)): len() would fix the exported batch size
            x = sample_mixture(means, stds, logits, inputs[0].flatten(1), inputs[1], deterministic=False)
        return x.reshape(-1, p.shape.horizon_steps, p.shape.action_dim)

    return network, sampler


# policy kind (shared/serving.py) -> (its torch module holding the weights, its sampler)
TORCH_SAMPLERS: dict[str, Callable[[PolicyToExport], tuple[Any, Callable]]] = {
    "diffusion": _torch_diffusion, "gaussian": _torch_gaussian, "gmm": _torch_gmm}


def graph_inputs(shape: PolicyShape, deterministic: bool) -> tuple[ServedInput, ...]:
    """A graph's inputs: state, then the noise its sampler consumes (a deterministic diffusion chain's too: ONNX
    has no seeded generator every runtime shares; a deterministic Gaussian or GMM policy takes none)."""
    noise = shape.sample_inputs if (shape.draws_default_noise or not deterministic) else ()
    return (shape.state_input, *noise)


def torch_policy(p: PolicyToExport, deterministic: bool) -> Any:
    """A torch module: raw state (B, To, Do) and the graph's noise (graph_inputs, batch first) -> environment
    actions, as the SavedModel computes them (core_tf/runtime/export.py)."""
    import torch

    owner, sampler = TORCH_SAMPLERS[p.shape.kind](p)
    f32 = np.float32
    norm, act_steps = p.norm, p.shape.act_steps

    class Policy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.policy = owner
            for name, value in (("obs_min", norm.obs_min), ("obs_max", norm.obs_max),
                                ("act_min", norm.action_min), ("act_max", norm.action_max)):
                self.register_buffer(name, torch.from_numpy(np.asarray(value, f32)))

        def forward(self, state: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
            s = 2.0 * ((state - self.obs_min) / (self.obs_max - self.obs_min + 1e-6) - 0.5)
            a = (sampler(s, inputs, deterministic) + 1.0) / 2.0 * (self.act_max - self.act_min) + self.act_min
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


def _check_any_batch(path: Path, inputs: tuple[ServedInput, ...]) -> None:
    """Run the graph at a batch size other than the traced one: torch.onnx falls back silently to a graph of fixed
    shapes when its dynamic export fails, and that graph would refuse every other batch at serving time."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {i.name: np.full((3, *i.trailing), 0.5 if i.unit_interval else 0.0, np.float32) for i in inputs}
    try:
        session.run(None, feed)
    except Exception as exc:  # onnxruntime's own error types
        raise UserError(f"the exported {path.name} does not take any batch size ({str(exc).splitlines()[0]}); "
                        "the torch twin's code fixed it while tracing") from None


def _batch_dynamic(batch: Any, n: int) -> tuple:
    """forward(state, *noise)'s dynamic shapes, the batch dimension of each: torch.export sees the varargs as one
    nested tuple, and none at all when there are none."""
    return ({0: batch},) + ((tuple({0: batch} for _ in range(n - 1)),) if n > 1 else ())


def export_onnx(ckpt_path: str, out_dir: str, version: int | None = None, normalization_path: str | None = None,
                act_steps: int | None = None) -> Path:
    """Write out_dir/<version>/{deterministic,sample}.onnx and signature.json atomically; an existing version
    is never overwritten."""
    p = read_policy(ckpt_path, normalization_path, act_steps)
    if p.shape.image is not None:
        raise UserError(f"{ckpt_path} is an image policy (camera frames): ONNX export serves state policies only; "
                        "export it as a SavedModel (--format savedmodel), which takes the frames as rgb uint8")
    try:
        import onnxruntime  # noqa: F401  (the graphs are checked with it before they are kept)
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError as exc:
        raise UserError(f"ONNX export needs onnx, onnxscript and onnxruntime ({exc.name} is missing): "
                        "pip install onnx onnxscript onnxruntime") from None
    import torch

    out = Path(out_dir)
    version = version if version is not None else next_version(out)
    target = out / str(version)
    if target.exists():
        raise ConfigError(f"{target} already exists; versions are immutable, pick another --version")
    s = p.shape
    out.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out, f".{version}.")
    try:
        batch = torch.export.Dim("batch")
        for name, (output, deterministic) in GRAPHS.items():
            inputs = graph_inputs(s, deterministic)
            example = tuple(torch.full((2, *i.trailing), 0.5 if i.unit_interval else 0.0) for i in inputs)
            with _quiet_exporter():
                torch.onnx.export(torch_policy(p, deterministic), example, str(tmp / f"{name}.onnx"),
                                  dynamo=True, input_names=[i.name for i in inputs], output_names=[output],
                                  dynamic_shapes=_batch_dynamic(batch, len(inputs)), verbose=False,
                                  external_data=False)
            _check_any_batch(tmp / f"{name}.onnx", inputs)
        (tmp / "signature.json").write_text(json.dumps({
            "checkpoint": str(ckpt_path), "serves": p.serving, "kind": s.kind,
            "inputs": {i.name: ["batch", *i.trailing] for i in (s.state_input, *s.sample_inputs)},
            "graph_inputs": {f"{name}.onnx": [i.name for i in graph_inputs(s, deterministic)]
                             for name, (_, deterministic) in GRAPHS.items()},
            "outputs": {"deterministic.onnx": {"action": ["batch", s.act_steps, s.action_dim]},
                        "sample.onnx": {"action_chunk": ["batch", s.horizon_steps, s.action_dim]}},
            "noise": NOISE_NOTES[s.kind]}, indent=1))
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


NOISE_NOTES = {
    "diffusion": "standard normal, batch first; deterministic.onnx with core_tf.runtime.export.default_noise "
                 "returns the SavedModel's serving_default action",
    "gaussian": "noise standard normal (clipped to the policy's randn_clip_value); deterministic.onnx returns the "
                "mean",
    "gmm": "noise standard normal, mode_uniform in [0, 1] picks each row's mode; deterministic.onnx returns the "
           "likeliest mode's mean"}


class OnnxPolicy:
    """Both graphs of an export in onnxruntime sessions, on numpy arrays."""

    def __init__(self, export_dir: str | os.PathLike) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # no constant-folding notes about Mish
        self.sessions = {name: ort.InferenceSession(str(Path(export_dir) / f"{name}.onnx"), options,
                                                    providers=["CPUExecutionProvider"]) for name in GRAPHS}

    def input_names(self, graph: str) -> list[str]:
        """The inputs `graph` takes, in order (state first)."""
        return [i.name for i in self.sessions[graph].get_inputs()]

    def run(self, graph: str, state: np.ndarray, noise: np.ndarray | None = None, **inputs: np.ndarray) -> np.ndarray:
        """The graph's output for state and its noise inputs (noise, and a GMM's mode_uniform), exactly those."""
        given = {"state": state, **({} if noise is None else {"noise": noise}), **inputs}
        names = self.input_names(graph)
        if set(given) != set(names):
            raise UserError(f"{graph}.onnx takes {', '.join(names)}; got {', '.join(given)}")
        return self.sessions[graph].run(None, {k: np.asarray(v, np.float32) for k, v in given.items()})[0]
