"""GMM policies' configs (upstream model/common/gmm.py GMMModel, model/rl/gmm_ppo.py PPO_GMM), read once.

Pre-training (upstream pre_gmm_*.yaml): TrainGaussianAgent runs GMMModel.loss, so a GMM pre-training config is a
Gaussian pre-training config whose `model` is GMMModelConfig (and whose loss takes no entropy bonus).
Fine-tuning (ft_ppo_gmm_*.yaml): upstream's Gaussian PPO agent runs PPO_GMM; its entry in the algorithm table is
`ppo_gmm`, told from Gaussian PPO by `model._target_`. The network (model.network / model.actor) is any
registered family of role "gmm" (shared/param_spec/families.py), read as the family its `_target_` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.config.reader import positive, setting
from shared.errors import ConfigError
from shared.param_spec import CriticObsConfig
from shared.param_spec.families import GMMNetworkConfig, upstream_targets
from shared.settings.finetune import FinetuneConfig
from shared.settings.pretrain import GaussianPretrainConfig, GaussianPretrainTrainConfig

GMM_MODEL_TARGET = "model.common.gmm.GMMModel"
PPO_GMM_TARGET = "model.rl.gmm_ppo.PPO_GMM"


def _same_modes(num_modes: int | None, network: GMMNetworkConfig, where: str) -> None:
    if num_modes is not None and num_modes != network.num_modes:
        raise ConfigError(f"config key 'num_modes'={num_modes} disagrees with '{where}.num_modes'={network.num_modes}")


@dataclass(frozen=True)
class GMMModelConfig:
    """Upstream GMMModel's arguments: the `model` section of a GMM pre-training config."""

    network: GMMNetworkConfig
    horizon_steps: int = setting(check=positive)

    def __post_init__(self) -> None:
        if self.network.horizon_steps != self.horizon_steps:
            raise ConfigError(f"model.network.horizon_steps={self.network.horizon_steps} disagrees with "
                              f"model.horizon_steps={self.horizon_steps}")


@dataclass(frozen=True)
class GMMPretrainTrainConfig(GaussianPretrainTrainConfig):
    REFUSED_KEYS: ClassVar[dict[str, str]] = {
        "ent_coef": "is not used for a GMM policy: upstream's GMMModel.loss takes no entropy bonus; leave it out"}


@dataclass(frozen=True)
class GMMPretrainConfig(GaussianPretrainConfig):
    """`dppo pretrain` of a GMM policy (upstream TrainGaussianAgent with GMMModel): the mean negative mixture
    log-likelihood of the demonstrations, with the epochs, AdamW, schedule and EMA of every pre-training."""

    train: GMMPretrainTrainConfig = setting()
    model: GMMModelConfig = setting()
    num_modes: int | None = setting(None, check=positive, doc="mixture components (upstream's top-level key)")

    def __post_init__(self) -> None:
        super().__post_init__()
        _same_modes(self.num_modes, self.model.network, "model.network")


@dataclass(frozen=True)
class GMMPPOModelConfig:
    """The `model` section of a PPO_GMM config (upstream PPO_GMM's arguments)."""

    actor: GMMNetworkConfig
    critic: CriticObsConfig
    clip_ploss_coef: float = setting(check=positive)
    horizon_steps: int | None = setting(None, check=positive, doc="defaults to model.actor.horizon_steps")
    clip_vloss_coef: float | None = setting(None, check=positive)
    norm_adv: bool = True

    def __post_init__(self) -> None:
        if self.horizon_steps is not None and self.actor.horizon_steps != self.horizon_steps:
            raise ConfigError(f"model.actor.horizon_steps={self.actor.horizon_steps} disagrees with "
                              f"model.horizon_steps={self.horizon_steps}")
        if self.critic.cond_dim != self.actor.cond_dim:
            raise ConfigError(f"model.critic.cond_dim={self.critic.cond_dim} must equal model.actor.cond_dim "
                              f"= {self.actor.cond_dim}")


@dataclass(frozen=True, kw_only=True)
class GMMFinetuneConfig(FinetuneConfig):
    """Everything `dppo finetune` reads for PPO_GMM: Gaussian PPO's loop and loss on a GMM policy (upstream runs it
    with TrainPPOGaussianAgent)."""

    model: GMMPPOModelConfig = setting()
    num_modes: int | None = setting(None, check=positive, doc="mixture components (upstream's top-level key)")

    def __post_init__(self) -> None:
        super().__post_init__()
        actor = self.model.actor
        _same_modes(self.num_modes, actor, "model.actor")
        for key in ("action_dim", "horizon_steps"):
            if getattr(self, key) != getattr(actor, key):
                raise ConfigError(f"config key '{key}'={getattr(self, key)} disagrees with "
                                  f"'model.actor.{key}'={getattr(actor, key)}")
        if actor.cond_dim != self.obs_dim * self.cond_steps:
            raise ConfigError(f"model.actor.cond_dim={actor.cond_dim} must equal obs_dim * cond_steps = "
                              f"{self.obs_dim * self.cond_steps}")
        if self.train.use_bc_loss:
            raise ConfigError("train.use_bc_loss: PPO_GMM has no BC term (upstream adds 0)")

    @property
    def is_diffusion(self) -> bool:
        return False

    @property
    def is_exact(self) -> bool:
        return False

    @property
    def algorithm(self) -> str:
        return "ppo_gmm"

    @property
    def gmm_actor(self) -> GMMNetworkConfig:
        return self.model.actor

    @property
    def gaussian_actor(self) -> GMMNetworkConfig:
        """The trained policy's network. PPO_GMM's checkpoint layout is PPO_Gaussian's (network = actor_ft, and
        critic), so code that maps those layouts takes either."""
        return self.model.actor


GMM_NETWORK_TARGETS = upstream_targets("gmm")
