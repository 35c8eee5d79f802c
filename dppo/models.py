"""Build the twin models a config describes, for either backend."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigError
from shared.param_spec import CriticObsConfig, critic_obs_spec, diffusion_mlp_spec, torch_default_init
from shared.settings import (
    AWRConfig,
    DiffusionConfig,
    EvalConfig,
    FinetuneConfig,
    IDQLConfig,
    PretrainConfig,
    RWRConfig,
)

BACKENDS = ("torch", "tf")


@dataclass(frozen=True)
class ModelPlan:
    """What a config asks to build: a diffusion policy and, for fine-tuning, a critic."""

    diffusion: DiffusionConfig
    critic: CriticObsConfig | None

    def policy_spec(self) -> OrderedDict:
        return diffusion_mlp_spec(self.diffusion.network, "network.")

    def critic_spec(self) -> OrderedDict:
        return OrderedDict() if self.critic is None else critic_obs_spec(self.critic)


def model_plan(cfg: PretrainConfig | FinetuneConfig | RWRConfig | AWRConfig | EvalConfig) -> ModelPlan | None:
    """The diffusion policy (and critic) a config describes; None for a Gaussian policy."""
    if isinstance(cfg, PretrainConfig):
        return ModelPlan(cfg.model, None)
    if isinstance(cfg, RWRConfig):
        return ModelPlan(cfg.diffusion, None)
    if isinstance(cfg, AWRConfig):
        return ModelPlan(cfg.diffusion, cfg.critic)
    if isinstance(cfg, IDQLConfig):  # the policy; its Q and V critics are judged by the IDQL parity test
        return ModelPlan(cfg.diffusion, None)
    if isinstance(cfg, EvalConfig):
        return ModelPlan(cfg.model, None) if cfg.is_diffusion else None
    return ModelPlan(cfg.diffusion, cfg.critic) if cfg.is_diffusion else None


def canonical_init(plan: ModelPlan, seed: int) -> tuple[OrderedDict, OrderedDict]:
    """(policy params, critic params) drawn once in numpy, for both frameworks."""
    return torch_default_init(plan.policy_spec(), seed), torch_default_init(plan.critic_spec(), seed + 1)


def build_policy(backend: str, diffusion: DiffusionConfig) -> Any:
    if backend == "torch":
        from core_torch.diffusion import DiffusionModel

        return DiffusionModel(diffusion)
    if backend == "tf":
        from core_tf.diffusion import DiffusionModel

        return DiffusionModel(diffusion)
    raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def build_critic(backend: str, critic: CriticObsConfig) -> Any:
    if backend == "torch":
        from core_torch.critic import CriticObs

        return CriticObs.from_config(critic)
    if backend == "tf":
        from core_tf.critic import CriticObs

        return CriticObs.from_config(critic)
    raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def canonical_io(backend: str) -> Any:
    """The backend's canonical module (export_state / load_state / parameter_shapes)."""
    if backend == "torch":
        import core_torch.canonical as io
    else:
        import core_tf.canonical as io
    return io
