"""DDPO configs (configs/ddpo/*.yaml), read once into typed settings: the pre-training of the small
class-conditional image denoiser (`dppo ddpo pretrain`) and its fine-tuning with a policy gradient over the
denoising chain (`dppo ddpo train`).

The denoiser is the reward-guided engine's conditional MLP (core_*/networks/cond_denoiser.py) with the
one-hot class (10 digits + the null class of classifier-free guidance) as its context and the flat 8x8
image as its sample. Fine-tuning samples with DDIM at eta = 1 and guidance weight w; the algorithms and
the report's hyperparameters (the shipped defaults) are described in docs/guide/ddpo.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.config.reader import non_negative, one_of, positive, seed_range, setting, unit_interval
from shared.ddpo.digits import NUM_CLASSES, PIXELS
from shared.ddpo.rewards import REWARDS
from shared.errors import ConfigError
from shared.param_spec import CondDenoiserConfig

ALGORITHMS = ("sf", "is", "iskl", "rwr", "sparse_rwr")
KL_ESTIMATORS = ("chain", "gaussian")


@dataclass(frozen=True, kw_only=True)
class DDPOModelConfig:
    """The class-conditional denoiser eps_hat(one_hot(c), x_t, t / T) on flat 8x8 images."""

    hidden_dim: int = setting(256, check=positive, doc="width of every hidden layer of the denoiser")
    time_dim: int = setting(16, check=positive, doc="width of the learned time embedding (Linear(1, time_dim))")
    denoising_steps: int = setting(1000, check=positive, doc="T: steps of the DDPM training chain (cosine betas)")

    def denoiser(self) -> CondDenoiserConfig:
        return CondDenoiserConfig(NUM_CLASSES + 1, PIXELS, self.hidden_dim, self.time_dim)


@dataclass(frozen=True, kw_only=True)
class DDPOPretrainSection:
    epochs: int = setting(check=positive, doc="passes over the 1797 digits")
    batch_size: int = setting(128, check=positive, doc="images per AdamW step (the last incomplete batch is dropped)")
    learning_rate: float = setting(1e-3, check=positive, doc="AdamW peak learning rate (cosine decay to 10% of it)")
    weight_decay: float = setting(1e-4, check=non_negative, doc="AdamW weight decay")
    max_grad_norm: float | None = setting(1.0, check=positive, doc="gradient norm clipping (null: none)")
    label_dropout: float = setting(0.1, check=unit_interval,
                                   doc="probability a training label is replaced by the null class (CFG)")
    ema_decay: float = setting(0.995, check=unit_interval, doc="EMA of the weights, updated after every step")
    checkpoint_every: int = setting(50, check=positive, doc="epochs between checkpoints (and the last one)")


@dataclass(frozen=True, kw_only=True)
class DDPOPretrainConfig:
    """`dppo ddpo pretrain`: the denoising loss with label dropout; EMA weights are what fine-tuning starts from."""

    logdir: str
    seed: int = setting(check=seed_range)
    model: DDPOModelConfig = setting()
    pretrain: DDPOPretrainSection = setting(doc="the pre-training run: epochs, AdamW, label dropout, EMA")
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class DDPOSampleConfig:
    ddim_steps: int = setting(50, check=positive, doc="S: DDIM steps of the chain (the MDP's horizon)")
    eta: float = setting(1.0, check=non_negative, doc="DDIM eta (1: every step stochastic, as DDPO)")
    guidance: float = setting(5.0, check=non_negative, doc="w: eps_u + w (eps_c - eps_u) (classifier-free guidance)")
    min_std: float = setting(0.01, check=positive,
                             doc="floor on every step's std, sampling and scoring alike (the last DDIM step's "
                                 "sigma is 0)")
    clip_x0: float | None = setting(1.0, check=positive, doc="clip the predicted x0 to [-clip_x0, clip_x0] (null: no)")
    eval_samples: int = setting(64, check=positive, doc="images sampled (fixed noise) for the evaluation metrics")


@dataclass(frozen=True, kw_only=True)
class DDPOTrainConfig:
    iterations: int = setting(check=positive, doc="sampling + update rounds")
    samples_per_iteration: int = setting(check=positive, doc="chains sampled per iteration (report: 8 IS/ISKL, 16 SF)")
    updates_per_iteration: int = setting(check=positive, doc="AdamW steps per iteration (report: 2 IS/ISKL, 4 SF)")
    batch_size: int = setting(16, check=positive,
                              doc="rows per update, drawn without replacement from the iteration's samples "
                                  "(min(batch_size, samples_per_iteration))")
    learning_rate: float = setting(3e-4, check=positive, doc="AdamW learning rate (betas 0.9/0.999, eps 1e-8)")
    weight_decay: float = setting(1e-4, check=non_negative, doc="AdamW weight decay")
    max_grad_norm: float | None = setting(1.0, check=positive, doc="gradient norm clipping (null: none)")
    clip_range: float = setting(1e-4, check=positive, doc="IS / ISKL: the ratio is clipped to [1 - c, 1 + c]")
    adv_clip_max: float = setting(5.0, check=positive, doc="normalized rewards are clipped to [-a, a] (DDPO's)")
    kl_coef: float = setting(0.1, check=non_negative,
                             doc="ISKL: lambda_KL, the weight of the KL term (train.kl_estimator) in the loss "
                                 "(not given by the report: our choice)")
    kl_estimator: str = setting("chain", check=one_of(*KL_ESTIMATORS),
                                doc="ISKL's KL term: 'chain', the report's (1/2)(sum_t logp_theta - logp_ref)^2 "
                                    "on the sampled chains; 'gaussian', sum_t mean_pixels (mu_theta - mu_ref)^2 "
                                    "/ (2 s_t^2), the KL of each step's two Gaussians on the chains' states "
                                    "(docs/evidence/ddpo.md: the report's estimate walks away from the reference "
                                    "here)")
    rwr_beta: float = setting(1.0, check=non_negative, doc="RWR: inverse temperature on the normalized reward")
    sparse_threshold: float = setting(0.0, doc="sparse RWR: weight 1 where the normalized reward >= this, else 0")
    stat_buffer: int = setting(32, check=positive, doc="per-prompt normalization: rewards kept per prompt")
    stat_min_count: int = setting(16, check=positive,
                                  doc="per-prompt normalization: below this many, the batch's mean/std are used")
    eval_every: int = setting(1, check=positive, doc="iterations between evaluations (and the last one)")
    checkpoint_every: int = setting(1, check=positive, doc="iterations between checkpoints (and the last one)")


@dataclass(frozen=True, kw_only=True)
class DDPOConfig:
    """`dppo ddpo train`: fine-tune the pre-trained denoiser found in `base` (a pretrain logdir or checkpoint)."""

    logdir: str
    base: str = setting(doc="pre-trained weights: a `dppo ddpo pretrain` logdir (its latest checkpoint's EMA) "
                            "or a checkpoint file")
    seed: int = setting(check=seed_range)
    algorithm: str = setting(check=one_of(*ALGORITHMS), doc="sf, is, iskl, rwr or sparse_rwr")
    reward: str = setting(check=one_of(*REWARDS), doc="compressibility, incompressibility or alignment")
    model: DDPOModelConfig = setting()
    sample: DDPOSampleConfig = setting()
    train: DDPOTrainConfig = setting()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.sample.ddim_steps > self.model.denoising_steps:
            raise ConfigError(f"sample.ddim_steps={self.sample.ddim_steps} is larger than model.denoising_steps="
                              f"{self.model.denoising_steps}")
        if self.train.checkpoint_every > self.train.iterations:
            raise ConfigError(f"train.checkpoint_every={self.train.checkpoint_every} is larger than "
                              f"train.iterations={self.train.iterations}")

    @property
    def minibatch(self) -> int:
        return min(self.train.batch_size, self.train.samples_per_iteration)


def _read(cls: type, raw: dict[str, Any]) -> Any:
    from shared.config.reader import read

    if "raw" in raw:
        raise ConfigError("unknown config key 'raw'")
    return read(cls, raw, "", given={"raw": raw})


def load_ddpo_settings(path: str, overrides: list[str] | tuple[str, ...] = ()) -> DDPOConfig:
    from shared.config.loading import load_config

    return _read(DDPOConfig, load_config(path, overrides))


def load_ddpo_pretrain_settings(path: str, overrides: list[str] | tuple[str, ...] = ()) -> DDPOPretrainConfig:
    from shared.config.loading import load_config

    return _read(DDPOPretrainConfig, load_config(path, overrides))
