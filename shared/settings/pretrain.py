"""A pre-training config, read once: a diffusion policy (upstream cfg/gym/pretrain/<env>/pre_diffusion_mlp.yaml,
PretrainConfig) or a Gaussian one (pre_gaussian_mlp.yaml, GaussianPretrainConfig)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from shared.config.reader import non_negative, positive, seed_range, setting, unit_interval
from shared.errors import ConfigError
from shared.param_spec.vit import IMAGE_NETWORK_CONFIGS
from shared.settings.model import DiffusionConfig, GaussianModelConfig, LRSchedulerConfig


class ChunkDims(NamedTuple):
    """What the demonstration batches look like: states (B, To=cond_steps, Do), actions (B, Ta, Da)."""

    obs_dim: int
    action_dim: int
    horizon_steps: int
    cond_steps: int


@dataclass(frozen=True)
class PretrainTrainConfig:
    n_epochs: int = setting(check=positive)
    batch_size: int = setting(check=positive)
    learning_rate: float = setting(check=positive)
    weight_decay: float = setting(check=non_negative)
    lr_scheduler: LRSchedulerConfig = setting()
    epoch_start_ema: int = setting(check=non_negative)
    update_ema_freq: int = setting(check=positive)
    save_model_freq: int = setting(check=positive)
    max_grad_norm: float | None = setting(None, check=positive)
    max_n_episodes: int | None = setting(None, check=positive)

    def __post_init__(self) -> None:
        self.lr_scheduler.check_steps(self.n_epochs, "lr_scheduler")  # one scheduler step per epoch


@dataclass(frozen=True, kw_only=True)
class TrainDatasetConfig:
    """The `train_dataset` section (upstream StitchedSequenceDataset's arguments). Only max_n_episodes changes
    what is trained on; the path and chunk sizes repeat top-level keys and are checked against them."""

    IGNORED_KEYS = ("use_img",)
    dataset_path: str | None = setting(None, doc="upstream repeats train_dataset_path here (the file read is that one)")
    horizon_steps: int | None = setting(None, check=positive, doc="must equal the model's horizon_steps")
    cond_steps: int | None = setting(None, check=positive, doc="must equal the model's cond_steps")
    img_cond_steps: int | None = setting(None, check=positive, doc="camera frames per sample (image configs)")
    max_n_episodes: int | None = setting(
        None, check=positive, doc="the first episodes of the dataset kept (unset: all; upstream's default 10000)")


def episodes_used(train_dataset: TrainDatasetConfig | None, train_max: int | None) -> int | None:
    """How many leading episodes pre-training reads: `train.max_n_episodes` (ours) or upstream's
    `train_dataset.max_n_episodes`; both given and different is refused."""
    upstream = None if train_dataset is None else train_dataset.max_n_episodes
    if train_max is not None and upstream is not None and upstream != train_max:
        raise ConfigError(f"config keys 'train.max_n_episodes'={train_max} and 'train_dataset.max_n_episodes'="
                          f"{upstream} disagree: give one")
    return train_max if train_max is not None else upstream


class ImageDims(NamedTuple):
    """What an image network reads beside the states: frames (B, img_cond_steps, *frame_shape) uint8, and whether
    each batch's frames are shifted (the network's augment: true)."""

    img_cond_steps: int
    frame_shape: tuple[int, int, int]  # (3 cameras, H, W)
    num_img: int
    augment: bool


def image_dims(cfg: Any) -> ImageDims | None:
    """The frames a pre-training config's network reads (an image network: upstream's *_img configs), else None."""
    net = cfg.model.network
    if not isinstance(net, IMAGE_NETWORK_CONFIGS):
        return None
    bb = net.backbone
    return ImageDims(net.img_cond_steps, (3 * net.num_img, bb.img_h, bb.img_w), net.num_img, net.augment)


def check_train_dataset(cfg: Any) -> None:
    """The `train_dataset` section and the top-level img_cond_steps agree with the config's chunk sizes, its
    network's frames and episode count."""
    section = cfg.train_dataset
    episodes_used(section, cfg.train.max_n_episodes)
    images = image_dims(cfg)
    for key, given in (("img_cond_steps", cfg.img_cond_steps),
                       ("train_dataset.img_cond_steps", None if section is None else section.img_cond_steps)):
        if given is not None and (images is None or given != images.img_cond_steps):
            what = "reads no camera frames" if images is None else f"reads {images.img_cond_steps}"
            raise ConfigError(f"config key '{key}'={given} disagrees with model.network, which {what}")
    if section is None:
        return
    for key in ("horizon_steps", "cond_steps"):
        given, dims = getattr(section, key), getattr(cfg.dims, key)
        if given is not None and given != dims:
            raise ConfigError(f"config key 'train_dataset.{key}'={given} disagrees with the model's {key}={dims}")


@dataclass(frozen=True)
class EMAConfig:
    decay: float = setting(check=unit_interval)


@dataclass(frozen=True)
class PretrainConfig:
    """Everything `dppo pretrain` reads. `raw` keeps the resolved mapping for config.json,
    checkpoint metadata and wandb."""

    logdir: str
    train_dataset_path: str
    seed: int = setting(check=seed_range)
    train: PretrainTrainConfig = setting()
    model: DiffusionConfig = setting()
    ema: EMAConfig = setting()
    train_dataset: TrainDatasetConfig | None = None
    normalization_path: str | None = None
    resume: str | None = None
    resume_fresh_optimizer: bool = setting(
        False, doc="resume from a checkpoint without optimizer state (weights only): fresh AdamW, schedule kept")
    env: str | None = None
    obs_dim: int | None = setting(None, check=positive)
    action_dim: int | None = setting(None, check=positive)
    denoising_steps: int | None = setting(None, check=positive)
    horizon_steps: int | None = setting(None, check=positive)
    cond_steps: int | None = setting(None, check=positive)
    img_cond_steps: int | None = setting(None, check=positive, doc="camera frames per sample (image networks)")
    shape_meta: dict | None = setting(None, doc="upstream's shape_meta (image configs; the network's sizes are read)")
    wandb: dict | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_train_dataset(self)
        for key in ("obs_dim", "action_dim", "denoising_steps", "horizon_steps", "cond_steps"):
            top = getattr(self, key)
            if top is not None and top != getattr(self.model, key):
                raise ConfigError(f"config key '{key}'={top} disagrees with 'model.{key}'={getattr(self.model, key)}")

    @property
    def diffusion(self) -> DiffusionConfig:
        return self.model

    @property
    def dims(self) -> ChunkDims:
        m = self.model
        return ChunkDims(m.obs_dim, m.action_dim, m.horizon_steps, m.cond_steps)


@dataclass(frozen=True)
class GaussianPretrainTrainConfig(PretrainTrainConfig):
    # upstream reads it with a default of 0 (its configs leave it out: the std is fixed)
    ent_coef: float = setting(0.0, check=non_negative, doc="entropy bonus in the Gaussian pre-training loss")


@dataclass(frozen=True)
class GaussianPretrainConfig:
    """`dppo pretrain` of a Gaussian policy (upstream TrainGaussianAgent): GaussianModel.loss on the same
    demonstrations, epochs, AdamW, schedule and EMA as diffusion pre-training. The network does not know
    obs_dim, so the top-level key is required here (upstream's files set it)."""

    logdir: str
    train_dataset_path: str
    seed: int = setting(check=seed_range)
    train: GaussianPretrainTrainConfig = setting()
    model: GaussianModelConfig = setting()
    ema: EMAConfig = setting()
    obs_dim: int = setting(check=positive)
    train_dataset: TrainDatasetConfig | None = None
    cond_steps: int = setting(1, check=positive)
    action_dim: int | None = setting(None, check=positive)
    horizon_steps: int | None = setting(None, check=positive)
    normalization_path: str | None = None
    resume: str | None = None
    resume_fresh_optimizer: bool = setting(
        False, doc="resume from a checkpoint without optimizer state (weights only): fresh AdamW, schedule kept")
    env: str | None = None
    img_cond_steps: int | None = setting(None, check=positive, doc="camera frames per sample (image networks)")
    shape_meta: dict | None = setting(None, doc="upstream's shape_meta (image configs; the network's sizes are read)")
    wandb: dict | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_train_dataset(self)
        net = self.model.network
        if net.cond_dim != self.obs_dim * self.cond_steps:
            raise ConfigError(f"model.network.cond_dim={net.cond_dim} must equal obs_dim * cond_steps = "
                              f"{self.obs_dim * self.cond_steps}")
        if net.horizon_steps != self.model.horizon_steps:
            raise ConfigError(f"model.network.horizon_steps={net.horizon_steps} disagrees with "
                              f"model.horizon_steps={self.model.horizon_steps}")
        for key in ("action_dim", "horizon_steps"):
            top = getattr(self, key)
            if top is not None and top != getattr(net, key):
                raise ConfigError(f"config key '{key}'={top} disagrees with 'model.network.{key}'={getattr(net, key)}")

    @property
    def dims(self) -> ChunkDims:
        net = self.model.network
        return ChunkDims(self.obs_dim, net.action_dim, net.horizon_steps, self.cond_steps)
