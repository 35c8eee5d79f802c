"""The shapes and inputs an exported policy serves, whatever the runtime (SavedModel, ONNX).

A policy is of one kind, the role of its network family (shared/param_spec/families.py): a diffusion
policy (a denoiser run as a reverse chain), a Gaussian policy or a Gaussian mixture (GMM). Every kind serves
a deterministic action from the observation alone and a stochastic chunk from the observation and the noise it
consumes, passed in so that results reproduce; `SAMPLE_INPUTS` says which noise, per kind. The observation is
the raw state, and for an image policy (upstream's robomimic *_img networks) also the camera frames `rgb`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SERVED_DTYPES = ("float32", "uint8")  # what a served input may be


@dataclass(frozen=True)
class ServedInput:
    """One input tensor of a served signature: dtype [batch, *dims]. A float32 input must be finite;
    unit_interval: its values must lie in [0, 1] (a uniform draw), otherwise any finite number (standard
    normal noise, raw observations). A uint8 input (camera frames) needs neither check: every uint8 value is
    a pixel value in [0, 255], the range the image networks scale from."""

    name: str
    dims: tuple[tuple[str, int], ...]  # (label, size) of each dimension after the batch
    unit_interval: bool = False
    dtype: str = "float32"  # "float32" or "uint8"

    def __post_init__(self) -> None:
        if self.dtype not in SERVED_DTYPES:
            raise ValueError(f"served input dtype {self.dtype!r} is not one of {', '.join(SERVED_DTYPES)}")
        if self.unit_interval and self.dtype != "float32":
            raise ValueError(f"{self.name}: only a float32 input can be a uniform draw")

    @property
    def checks_finite(self) -> bool:
        """Whether NaN and Inf are possible, hence refused (a float input)."""
        return self.dtype == "float32"

    @property
    def trailing(self) -> list[int]:
        return [size for _, size in self.dims]

    def describe(self) -> str:
        """e.g. "float32 [batch, S+1=21, horizon_steps=4, action_dim=3]"."""
        return f"{self.dtype} [" + ", ".join(["batch", *(f"{label}={size}" for label, size in self.dims)]) + "]"


@dataclass(frozen=True)
class ImageShape:
    """The camera frames an image policy reads: the last img_cond_steps frames of num_img cameras, each
    3 x img_h x img_w, served as rgb uint8 [batch, img_cond_steps, 3 num_img, img_h, img_w] (channels per
    camera in order, as shared/data/observations.py holds them)."""

    img_cond_steps: int
    num_img: int
    img_h: int
    img_w: int

    @property
    def rgb_input(self) -> ServedInput:
        return ServedInput("rgb", (("img_cond_steps", self.img_cond_steps), ("3*num_img", 3 * self.num_img),
                                   ("img_h", self.img_h), ("img_w", self.img_w)), dtype="uint8")


@dataclass(frozen=True)
class PolicyShape:
    cond_steps: int
    obs_dim: int
    horizon_steps: int
    action_dim: int
    act_steps: int
    num_steps: int  # S reverse steps of a diffusion chain (0: a Gaussian or GMM policy has no chain)
    kind: str = "diffusion"  # a key of SAMPLE_INPUTS
    image: ImageShape | None = None  # the camera frames of an image policy; None: the state alone

    def __post_init__(self) -> None:
        if self.kind not in SAMPLE_INPUTS:
            raise ValueError(f"policy kind {self.kind!r} is not one of {', '.join(SAMPLE_INPUTS)}")

    @property
    def state_input(self) -> ServedInput:
        return ServedInput("state", (("cond_steps", self.cond_steps), ("obs_dim", self.obs_dim)))

    @property
    def observation_inputs(self) -> tuple[ServedInput, ...]:
        """What every signature takes first, in order: (state,), or (state, rgb) for an image policy."""
        return (self.state_input,) if self.image is None else (self.state_input, self.image.rgb_input)

    @property
    def sample_inputs(self) -> tuple[ServedInput, ...]:
        """The stochastic signature's inputs after the observation's, in order."""
        return SAMPLE_INPUTS[self.kind](self)

    @property
    def draws_default_noise(self) -> bool:
        """The deterministic signature still runs on noise (a diffusion chain, evaluated with DDIM eta 0 or a
        std floor): it draws its own from a seeded generator. Gaussian and GMM policies need none."""
        return self.kind == "diffusion"


def _chunk(shape: PolicyShape) -> tuple[tuple[str, int], ...]:
    return (("horizon_steps", shape.horizon_steps), ("action_dim", shape.action_dim))


# kind -> the noise its stochastic signature takes after the observation (`state`, an image policy's `rgb`):
#   diffusion: noise (B, S+1, Ta, Da), standard normal: x_S and each reverse step's noise
#   gaussian:  noise (B, Ta, Da), standard normal: chunk = mean + std * clip(noise)
#   gmm:       noise (B, Ta, Da) as above for the picked mode; mode_uniform (B,) in [0, 1] picks the mode by
#              inverse CDF of the mixture weights
SAMPLE_INPUTS: dict[str, Callable[[PolicyShape], tuple[ServedInput, ...]]] = {
    "diffusion": lambda s: (ServedInput("noise", (("S+1", s.num_steps + 1), *_chunk(s))),),
    "gaussian": lambda s: (ServedInput("noise", _chunk(s)),),
    "gmm": lambda s: (ServedInput("noise", _chunk(s)), ServedInput("mode_uniform", (), unit_interval=True)),
}
