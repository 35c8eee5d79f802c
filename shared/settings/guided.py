"""A reward-guided diffusion config (configs/reward_guided/*.yaml), read once into GuidedConfig.

The engine (the "Diffusion Policy Engine" note, code Freeky7819/diffusion-policy-engine) learns a
conditional denoiser eps_hat(x, p_t, t / T) of parameters p for contexts x with

    loss = mean (eps_hat - eps)^2  -  lambda(epoch) * mean reward(x, p0_hat)

and samples by DDPM with optional MPPI re-weighting of jittered candidates of every step's mean.
`train.reward_gradient` says whether the reward term reaches the denoiser: the author's code scores a
detached p0_hat (false, the default: the published curve comes from that code path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.config.reader import non_negative, one_of, positive, seed_range, setting, unit_interval
from shared.errors import ConfigError
from shared.param_spec import CondDenoiserConfig

REWARDS = ("shifted_rosenbrock",)


@dataclass(frozen=True, kw_only=True)
class GuidedModelConfig:
    """The conditional denoiser (the engine's CondDenoiser) and its chain."""

    context_dim: int = setting(check=positive, doc="dimension of the context x the parameters are generated for")
    param_dim: int = setting(check=positive, doc="dimension of the generated parameters p")
    hidden_dim: int = setting(256, check=positive, doc="width of every hidden layer of the denoiser")
    time_dim: int = setting(16, check=positive, doc="width of the learned time embedding (Linear(1, time_dim))")
    denoising_steps: int = setting(200, check=positive, doc="T: steps of the DDPM chain (cosine betas on t / T)")

    def denoiser(self) -> CondDenoiserConfig:
        return CondDenoiserConfig(self.context_dim, self.param_dim, self.hidden_dim, self.time_dim)


@dataclass(frozen=True, kw_only=True)
class GuidedDataConfig:
    """The benchmark's training data: contexts from N(0, I), their optima plus noise."""

    size: int = setting(4096, check=positive, doc="number of (x, p) training pairs")
    noise_std: float = setting(0.05, check=non_negative, doc="std of the noise added to the optimal p")


@dataclass(frozen=True, kw_only=True)
class GuidedTrainConfig:
    epochs: int = setting(check=positive, doc="passes over the training data")
    batch_size: int = setting(check=positive, doc="pairs per AdamW step (the last incomplete batch is dropped)")
    learning_rate: float = setting(check=positive, doc="AdamW learning rate (reward-guided training)")
    weight_decay: float = setting(0.01, check=non_negative, doc="AdamW weight decay (torch's default 0.01)")
    max_grad_norm: float | None = setting(1.0, check=positive, doc="gradient norm clipping (null: none)")
    reward_weight: float = setting(check=non_negative, doc="lambda_R: the reward term's weight after the ramp")
    warmup_fraction: float = setting(0.2, check=unit_interval,
                                     doc="the first max(1, int(fraction * epochs)) epochs train without reward")
    ramp_fraction: float = setting(0.4, check=unit_interval,
                                   doc="then lambda ramps linearly to reward_weight over int(fraction * epochs)")
    reward_gradient: bool = setting(False, doc="the reward term backpropagates into the denoiser (false: it is "
                                               "scored on a detached p0_hat, as the author's code does)")


@dataclass(frozen=True, kw_only=True)
class GuidedSampleConfig:
    mppi: bool = setting(True, doc="re-weight every step's mean by MPPI (false: plain DDPM sampling)")
    mppi_candidates: int = setting(4, check=positive, doc="K: jittered candidates scored beside each step's mean")
    mppi_temperature: float = setting(0.5, doc="MPPI weights are softmax(reward / temperature); > 0")
    mppi_jitter: float = setting(0.05, check=positive, doc="std of the candidates' jitter around the mean")
    validation_size: int = setting(256, check=positive, doc="contexts sampled for the validation reward")

    def __post_init__(self) -> None:
        if not self.mppi_temperature > 0:
            raise ConfigError(f"config key 'sample.mppi_temperature' must be > 0 (it divides the rewards), got "
                              f"{self.mppi_temperature!r}")


@dataclass(frozen=True, kw_only=True)
class GuidedConfig:
    """Everything `dppo guide` reads. `raw` keeps the resolved mapping for config.json."""

    logdir: str
    seed: int = setting(check=seed_range)
    reward: str = setting("shifted_rosenbrock", check=one_of(*REWARDS), doc="the benchmark reward R(x, p)")
    black_box_reward: bool = setting(False, doc="treat the reward as a black box: only MPPI sees it (its values, "
                                                "on the host), the loss has no reward term")
    model: GuidedModelConfig = setting()
    data: GuidedDataConfig = setting()
    train: GuidedTrainConfig = setting()
    sample: GuidedSampleConfig = setting()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.reward == "shifted_rosenbrock" and (self.model.context_dim, self.model.param_dim) != (2, 2):
            raise ConfigError("the shifted Rosenbrock reward takes 2-d contexts and parameters: model.context_dim "
                              f"and model.param_dim must be 2, got {self.model.context_dim} and {self.model.param_dim}")
        if self.black_box_reward and self.train.reward_gradient:
            raise ConfigError("train.reward_gradient=true needs a differentiable reward; black_box_reward=true "
                              "reaches sampling only (MPPI)")
        if self.train.batch_size > self.data.size:
            raise ConfigError(f"train.batch_size={self.train.batch_size} is larger than data.size="
                              f"{self.data.size}: no complete batch")


def read_guided_config(raw: dict[str, Any]) -> GuidedConfig:
    """Read a resolved reward-guided config mapping (one ConfigError per problem)."""
    from shared.config.reader import read

    if "raw" in raw:
        raise ConfigError("unknown config key 'raw'")
    return read(GuidedConfig, raw, "", given={"raw": raw})


def load_guided_settings(path: str, overrides: list[str] | tuple[str, ...] = ()) -> GuidedConfig:
    from shared.config.loading import load_config

    return read_guided_config(load_config(path, overrides))
