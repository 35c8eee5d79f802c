"""Build the twin models a config describes, for either backend."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigError
from shared.param_spec import CriticObsConfig, critic_obs_spec, torch_default_init
from shared.param_spec.families import network_spec
from shared.settings import DiffusionConfig, EvalConfig, PretrainConfig, algorithm_of
from shared.settings.run import PolicyRunConfig

BACKENDS = ("torch", "tf")


@dataclass(frozen=True)
class ModelPlan:
    """What a config asks to build: a diffusion policy and, for fine-tuning, a critic."""

    diffusion: DiffusionConfig
    critic: CriticObsConfig | None

    def policy_spec(self) -> OrderedDict:
        return network_spec(self.diffusion.network, "network.")

    def critic_spec(self) -> OrderedDict:
        return OrderedDict() if self.critic is None else critic_obs_spec(self.critic)


def model_plan(cfg: PretrainConfig | PolicyRunConfig) -> ModelPlan | None:
    """The diffusion policy (and V critic) a config describes; None for a Gaussian policy. A fine-tuning
    algorithm's entry says whether dppo parity probes its critic (the replay baselines' Q critics are judged by
    parity_tests/test_<algorithm>_parity.py)."""
    if isinstance(cfg, PretrainConfig):
        return ModelPlan(cfg.model, None)
    if isinstance(cfg, EvalConfig):
        return ModelPlan(cfg.model, None) if cfg.is_diffusion else None
    if not cfg.is_diffusion:
        return None
    return ModelPlan(cfg.diffusion, cfg.critic if algorithm_of(cfg).parity_critic else None)


def canonical_init(plan: ModelPlan, seed: int) -> tuple[OrderedDict, OrderedDict]:
    """(policy params, critic params) drawn once in numpy, for both frameworks."""
    return torch_default_init(plan.policy_spec(), seed), torch_default_init(plan.critic_spec(), seed + 1)


def build_policy(backend: str, diffusion: DiffusionConfig) -> Any:
    if backend == "torch":
        from core_torch.diffusion.model import DiffusionModel

        return DiffusionModel(diffusion)
    if backend == "tf":
        from core_tf.diffusion.model import DiffusionModel

        return DiffusionModel(diffusion)
    raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def build_critic(backend: str, critic: CriticObsConfig) -> Any:
    if backend == "torch":
        from core_torch.networks.critic import CriticObs

        return CriticObs.from_config(critic)
    if backend == "tf":
        from core_tf.networks.critic import CriticObs

        return CriticObs.from_config(critic)
    raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def canonical_io(backend: str) -> Any:
    """The backend's canonical module (export_state / load_state / parameter_shapes)."""
    if backend == "torch":
        import core_torch.runtime.canonical as io
    else:
        import core_tf.runtime.canonical as io
    return io
