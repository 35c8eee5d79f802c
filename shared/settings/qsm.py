"""A Q-score matching fine-tuning config (upstream cfg/gym/finetune/<env>/ft_qsm_diffusion_mlp.yaml), read
once, and QSMSettings, the typed view the twins and the driver take.

QSM (upstream QSMDiffusion / TrainQSMDiffusionAgent) keeps a replay buffer of whole policy steps, fits a
double-Q critic to one-step TD targets (next chunks sampled from the current policy, a Polyak-averaged
target critic), and trains the diffusion policy so that minus its predicted noise at a noisy buffered
chunk matches q_grad_coeff times the critic's action gradient there.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.reader import non_negative, setting, unit_interval
from shared.settings.replay import (
    DoubleQModelConfig,
    DoubleQRunConfig,
    ReplaySettings,
    ReplayTrainConfig,
    replay_settings_kwargs,
)


@dataclass(frozen=True, kw_only=True)
class QSMTrainConfig(ReplayTrainConfig):
    """The `train` section of a QSM config: the common replay keys plus QSM's own."""

    q_grad_coeff: float = setting(check=non_negative, doc="the actor matches -epsilon to this times dQ/da")
    critic_tau: float = setting(check=unit_interval, doc="Polyak rate of the target critic, after every minibatch")


@dataclass(frozen=True, kw_only=True)
class QSMModelConfig(DoubleQModelConfig):
    """The `model` section of a QSM config (upstream QSMDiffusion's arguments)."""

    algorithm = "QSM"


@dataclass(frozen=True, kw_only=True)
class QSMSettings(ReplaySettings):
    """Everything the QSM loop and its updates need besides the models."""

    q_grad_coeff: float
    critic_tau: float


@dataclass(frozen=True, kw_only=True)
class QSMConfig(DoubleQRunConfig):
    """Everything `dppo finetune` reads for QSM (`model` is QSMModelConfig)."""

    train: QSMTrainConfig = setting()

    algorithm = "qsm"

    @property
    def qsm(self) -> QSMSettings:
        t = self.train
        # upstream's deques hold buffer_size policy steps of all n_envs envs
        return QSMSettings(**replay_settings_kwargs(self, t.buffer_size * self.env.n_envs),
                           q_grad_coeff=t.q_grad_coeff, critic_tau=t.critic_tau)
