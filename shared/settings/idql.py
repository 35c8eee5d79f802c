"""An implicit diffusion Q-learning fine-tuning config (upstream cfg/gym/finetune/<env>/ft_idql_diffusion_mlp.yaml),
read once, and IDQLSettings, the typed view the twins and the driver take.

IDQL (upstream IDQLDiffusion / TrainIDQLDiffusionAgent) keeps a replay buffer of whole policy steps,
fits a double-Q critic (with a Polyak-averaged target copy) to r + gamma * V(s') and a state-value
critic to the expectile of the target Q, trains the diffusion policy by plain denoising regression on
buffered chunks, and acts by scoring eval_sample_num candidate chunks with the target Q.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.reader import positive, setting, unit_interval
from shared.errors import ConfigError
from shared.param_spec import CriticObsActConfig, CriticObsConfig
from shared.param_spec.families import DenoiserNetworkConfig
from shared.settings.regression import DiffusionRegressionModelConfig
from shared.settings.replay import (
    ReplayRunConfig,
    ReplaySettings,
    ReplayTrainConfig,
    check_q_critic,
    check_v_critic,
    replay_settings_kwargs,
)


def _open_unit(value: float) -> str | None:
    return None if 0.0 < value < 1.0 else "must be strictly between 0 and 1"


@dataclass(frozen=True, kw_only=True)
class IDQLTrainConfig(ReplayTrainConfig):
    """The `train` section of an IDQL config (upstream's names and defaults)."""

    critic_tau: float = setting(check=unit_interval, doc="Polyak rate of the target Q copy, per minibatch")
    eval_sample_num: int = setting(check=positive, doc="candidate chunks sampled and scored per observation")
    use_expectile_exploration: bool = setting(
        doc="training picks a candidate at random, weight critic_hyperparam where Q > V; false: the argmax")
    eval_deterministic: bool = setting(
        False, doc="evaluation samples with deterministic chains and takes the argmax candidate")
    critic_hyperparam: float = setting(
        0.7, check=_open_unit, doc="candidate weight where Q - V > 0 (1 - it elsewhere); upstream's fixed 0.7")
    expectile: float = setting(0.8, check=_open_unit, doc="expectile of the V loss; upstream's fixed 0.8")


@dataclass(frozen=True, kw_only=True)
class IDQLModelConfig(DiffusionRegressionModelConfig):
    """The `model` section of an IDQL config (upstream IDQLDiffusion's arguments)."""

    actor: DenoiserNetworkConfig
    critic_q: CriticObsActConfig
    critic_v: CriticObsConfig

    algorithm = "IDQL"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_q_critic(self.critic_q, "model.critic_q", self.obs_dim, self.cond_steps, self.action_dim,
                       self.horizon_steps)
        check_v_critic(self.critic_v, "model.critic_v", self.obs_dim, self.cond_steps)
        if not self.critic_q.double_q:
            raise ConfigError("model.critic_q.double_q: IDQL takes the minimum of two Q networks (upstream)")
        self.diffusion()

    def policy_network(self) -> DenoiserNetworkConfig:
        return self.actor


@dataclass(frozen=True, kw_only=True)
class IDQLSettings(ReplaySettings):
    """Everything the IDQL loop and its updates need besides the models."""

    critic_tau: float
    num_sample: int
    use_expectile_exploration: bool
    eval_deterministic: bool
    critic_hyperparam: float
    expectile: float


@dataclass(frozen=True, kw_only=True)
class IDQLConfig(ReplayRunConfig):
    """Everything `dppo finetune` reads for IDQL (`model` is IDQLModelConfig)."""

    train: IDQLTrainConfig = setting()

    algorithm = "idql"

    @property
    def critic_q(self) -> CriticObsActConfig:
        return self.model.critic_q

    @property
    def critic_v(self) -> CriticObsConfig:
        return self.model.critic_v

    @property
    def idql(self) -> IDQLSettings:
        """Upstream's buffer is a deque of buffer_size policy steps of all envs: buffer_size x n_envs transitions."""
        t = self.train
        return IDQLSettings(**replay_settings_kwargs(self, t.buffer_size * self.env.n_envs),
                            critic_tau=t.critic_tau, num_sample=t.eval_sample_num,
                            use_expectile_exploration=t.use_expectile_exploration,
                            eval_deterministic=t.eval_deterministic, critic_hyperparam=t.critic_hyperparam,
                            expectile=t.expectile)
