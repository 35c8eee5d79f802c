"""Build the twin models a config describes, for either backend."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigError
from shared.model_config import DiffusionConfig, critic_obs_config, diffusion_config
from shared.param_spec import CriticObsConfig, critic_obs_spec, diffusion_mlp_spec, torch_default_init

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


def model_plan(cfg: dict[str, Any]) -> ModelPlan:
    model = cfg.get("model")
    if not isinstance(model, dict):
        raise ConfigError("missing required config section 'model'")
    if "network" in model:
        return ModelPlan(diffusion_config(cfg, "network"), None)
    if "actor" in model:
        critic = model.get("critic")
        return ModelPlan(
            diffusion_config(cfg, "actor"),
            critic_obs_config(critic, "model.critic") if isinstance(critic, dict) else None,
        )
    raise ConfigError("config section 'model' needs 'network' (pre-training) or 'actor' (fine-tuning)")


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
