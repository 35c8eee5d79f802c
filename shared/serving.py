"""The shapes and inputs an exported policy serves, whatever the runtime (SavedModel, ONNX).

A policy is of one kind, the role of its network family (shared/param_spec/families.py): a diffusion
policy (a denoiser run as a reverse chain), a Gaussian policy or a Gaussian mixture (GMM). Every kind serves
a deterministic action from the state alone and a stochastic chunk from the state and the noise it
consumes, passed in so that results reproduce; `SAMPLE_INPUTS` says which noise, per kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ServedInput:
    """One input tensor of a served signature: float32 [batch, *dims]; unit_interval: values must lie in
    [0, 1] (a uniform draw), otherwise any finite number (standard normal noise, raw observations)."""

    name: str
    dims: tuple[tuple[str, int], ...]  # (label, size) of each dimension after the batch
    unit_interval: bool = False

    @property
    def trailing(self) -> list[int]:
        return [size for _, size in self.dims]

    def describe(self) -> str:
        """e.g. "float32 [batch, S+1=21, horizon_steps=4, action_dim=3]"."""
        return "float32 [" + ", ".join(["batch", *(f"{label}={size}" for label, size in self.dims)]) + "]"


@dataclass(frozen=True)
class PolicyShape:
    cond_steps: int
    obs_dim: int
    horizon_steps: int
    action_dim: int
    act_steps: int
    num_steps: int  # S reverse steps of a diffusion chain (0: a Gaussian or GMM policy has no chain)
    kind: str = "diffusion"  # a key of SAMPLE_INPUTS

    def __post_init__(self) -> None:
        if self.kind not in SAMPLE_INPUTS:
            raise ValueError(f"policy kind {self.kind!r} is not one of {', '.join(SAMPLE_INPUTS)}")

    @property
    def state_input(self) -> ServedInput:
        return ServedInput("state", (("cond_steps", self.cond_steps), ("obs_dim", self.obs_dim)))

    @property
    def sample_inputs(self) -> tuple[ServedInput, ...]:
        """The stochastic signature's inputs after `state`, in order."""
        return SAMPLE_INPUTS[self.kind](self)

    @property
    def draws_default_noise(self) -> bool:
        """The deterministic signature still runs on noise (a diffusion chain, evaluated with DDIM eta 0 or a
        std floor): it draws its own from a seeded generator. Gaussian and GMM policies need none."""
        return self.kind == "diffusion"


def _chunk(shape: PolicyShape) -> tuple[tuple[str, int], ...]:
    return (("horizon_steps", shape.horizon_steps), ("action_dim", shape.action_dim))


# kind -> the noise its stochastic signature takes after `state`:
#   diffusion: noise (B, S+1, Ta, Da), standard normal: x_S and each reverse step's noise
#   gaussian:  noise (B, Ta, Da), standard normal: chunk = mean + std * clip(noise)
#   gmm:       noise (B, Ta, Da) as above for the picked mode; mode_uniform (B,) in [0, 1] picks the mode by
#              inverse CDF of the mixture weights
SAMPLE_INPUTS: dict[str, Callable[[PolicyShape], tuple[ServedInput, ...]]] = {
    "diffusion": lambda s: (ServedInput("noise", (("S+1", s.num_steps + 1), *_chunk(s))),),
    "gaussian": lambda s: (ServedInput("noise", _chunk(s)),),
    "gmm": lambda s: (ServedInput("noise", _chunk(s)), ServedInput("mode_uniform", (), unit_interval=True)),
}
