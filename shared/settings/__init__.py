"""Typed settings: a resolved config mapping is read once, at the CLI boundary, into frozen
dataclasses (`read_config`); everything below takes those, never the raw mapping.

Kinds: PretrainConfig (dppo pretrain), FinetuneConfig (DPPO or Gaussian PPO fine-tuning), RWRConfig
and AWRConfig (reward- and advantage-weighted regression fine-tuning) and EvalConfig (upstream's eval
configs). Upstream's own config files are accepted as they are: the kind comes from their `_target_`
where present, else from the keys; a fine-tuning config's algorithm from its top-level or
`model._target_` (PPO without either).
"""

from __future__ import annotations

from typing import Any

from shared.config_reader import read
from shared.errors import ConfigError
from shared.settings.awr import AWRConfig, AWRModelConfig, AWRSettings, AWRTrainConfig
from shared.settings.dipo import DIPOConfig, DIPOModelConfig, DIPOSettings, DIPOTrainConfig
from shared.settings.dql import DQLConfig, DQLModelConfig, DQLSettings, DQLTrainConfig
from shared.settings.evaluation import EvalConfig
from shared.settings.exact import ExactDiffusionPPOModelConfig, ExactLikelihoodSettings
from shared.settings.finetune import (
    DPPOSettings,
    FinetuneConfig,
    PPOSettings,
    PPOTrainConfig,
)
from shared.settings.idql import IDQLConfig, IDQLModelConfig, IDQLSettings, IDQLTrainConfig
from shared.settings.model import (
    DiffusionConfig,
    DiffusionPPOModelConfig,
    GaussianModelConfig,
    GaussianPPOModelConfig,
    LRSchedulerConfig,
)
from shared.settings.pretrain import PretrainConfig
from shared.settings.qsm import QSMConfig, QSMModelConfig, QSMSettings, QSMTrainConfig
from shared.settings.run import EnvConfig, PolicyRunConfig
from shared.settings.rwr import RWRConfig, RWRModelConfig, RWRSettings, RWRTrainConfig

__all__ = [
    "AWRConfig", "AWRModelConfig", "AWRSettings", "AWRTrainConfig", "DIPOConfig", "DIPOModelConfig", "DIPOSettings",
    "DIPOTrainConfig", "DPPOSettings", "DQLConfig", "DQLModelConfig", "DQLSettings", "DQLTrainConfig",
    "DiffusionConfig", "DiffusionPPOModelConfig", "EnvConfig", "EvalConfig", "ExactDiffusionPPOModelConfig",
    "ExactLikelihoodSettings", "FinetuneConfig", "GaussianModelConfig", "GaussianPPOModelConfig",
    "LRSchedulerConfig", "PPOSettings", "PPOTrainConfig", "PolicyRunConfig", "PretrainConfig", "QSMConfig",
    "QSMModelConfig", "QSMSettings", "QSMTrainConfig", "RWRConfig", "RWRModelConfig", "RWRSettings",
    "RWRTrainConfig", "config_kind", "finetune_algorithm", "load_settings", "read_config",
    "IDQLConfig", "IDQLModelConfig", "IDQLSettings", "IDQLTrainConfig",
]

AnyConfig = PretrainConfig | FinetuneConfig | RWRConfig | AWRConfig | EvalConfig

# Fine-tuning algorithms besides PPO (DPPO, Gaussian PPO): name -> (upstream agent, upstream model,
# config class, model config class). One line per algorithm.
_BASELINES: dict[str, tuple[str, str, type, type]] = {
    "rwr": ("agent.finetune.train_rwr_diffusion_agent.TrainRWRDiffusionAgent",
            "model.diffusion.diffusion_rwr.RWRDiffusion", RWRConfig, RWRModelConfig),
    "awr": ("agent.finetune.train_awr_diffusion_agent.TrainAWRDiffusionAgent",
            "model.diffusion.diffusion_awr.AWRDiffusion", AWRConfig, AWRModelConfig),
    "qsm": ("agent.finetune.train_qsm_diffusion_agent.TrainQSMDiffusionAgent",
            "model.diffusion.diffusion_qsm.QSMDiffusion", QSMConfig, QSMModelConfig),
    "dipo": ("agent.finetune.train_dipo_diffusion_agent.TrainDIPODiffusionAgent",
             "model.diffusion.diffusion_dipo.DIPODiffusion", DIPOConfig, DIPOModelConfig),
    "dql": ("agent.finetune.train_dql_diffusion_agent.TrainDQLDiffusionAgent",
            "model.diffusion.diffusion_dql.DQLDiffusion", DQLConfig, DQLModelConfig),
    "idql": ("agent.finetune.train_idql_diffusion_agent.TrainIDQLDiffusionAgent",
             "model.diffusion.diffusion_idql.IDQLDiffusion", IDQLConfig, IDQLModelConfig),
}

# DPPO with the exact (probability-flow ODE) likelihood: a PPO config (FinetuneConfig) with its own model section.
_EXACT_PPO = ("agent.finetune.train_ppo_exact_diffusion_agent.TrainPPOExactDiffusionAgent",
              "model.diffusion.diffusion_ppo_exact.PPOExactDiffusion")

# Upstream agents (top-level _target_) this project runs, by kind.
_UPSTREAM_AGENTS = {
    "agent.pretrain.train_diffusion_agent.TrainDiffusionAgent": "pretrain",
    "agent.finetune.train_ppo_diffusion_agent.TrainPPODiffusionAgent": "finetune",
    "agent.finetune.train_ppo_gaussian_agent.TrainPPOGaussianAgent": "finetune",
    **{agent: "finetune" for agent, *_ in _BASELINES.values()},
    _EXACT_PPO[0]: "finetune",
    "agent.eval.eval_diffusion_agent.EvalDiffusionAgent": "eval",
    "agent.eval.eval_gaussian_agent.EvalGaussianAgent": "eval",
}


def config_kind(raw: dict[str, Any], expect: tuple[str, ...] = ("pretrain", "finetune", "eval")) -> str:
    """'pretrain', 'finetune' or 'eval': upstream's `_target_` says; else the one kind expected (the
    command's), else the keys."""
    target = raw.get("_target_")
    if target is not None:
        if target not in _UPSTREAM_AGENTS:
            raise ConfigError(f"upstream agent {target!r} is not supported; this project runs "
                              f"{', '.join(sorted(_UPSTREAM_AGENTS))}")
        return _UPSTREAM_AGENTS[target]
    if len(expect) == 1:
        return expect[0]
    train = raw.get("train")
    if isinstance(train, dict) and "n_epochs" in train:
        return "pretrain"
    if isinstance(train, dict) and "n_train_itr" in train:
        return "finetune"
    if "n_steps" in raw and "train" not in raw:
        return "eval"
    raise ConfigError("cannot tell the config's kind: expected train.n_epochs (pre-training), train.n_train_itr "
                      "(fine-tuning) or a top-level n_steps (evaluation)")


_FINETUNE_AGENTS = {agent: name for name, (agent, *_) in _BASELINES.items()} | {_EXACT_PPO[0]: "ppo_exact"}
_FINETUNE_MODELS = {model: name for name, (_, model, *_) in _BASELINES.items()} | {_EXACT_PPO[1]: "ppo_exact"}


def finetune_algorithm(raw: dict[str, Any]) -> str:
    """'ppo' (DPPO or Gaussian PPO), 'ppo_exact' (DPPO with the exact likelihood) or a baseline's name ('rwr',
    'awr', ...): the top-level `_target_` says, else `model._target_`."""
    model = raw.get("model")
    by_agent = _FINETUNE_AGENTS.get(raw.get("_target_"), "ppo" if raw.get("_target_") else None)
    by_model = _FINETUNE_MODELS.get(model.get("_target_")) if isinstance(model, dict) else None
    if by_agent is not None and by_model is not None and by_agent != by_model:
        raise ConfigError(f"_target_ {raw.get('_target_')!r} and model._target_ {model.get('_target_')!r} "
                          "name different algorithms")
    return by_agent or by_model or "ppo"


def _is_diffusion_network(section: dict[str, Any], target: Any, model: dict[str, Any]) -> bool:
    """A diffusion policy (DiffusionMLP) or a Gaussian one: `model._target_` says, else the keys."""
    if isinstance(target, str):
        if "Gaussian" in target:
            return False
        if "Diffusion" in target:
            return True
        raise ConfigError(f"model._target_ {target!r} is not supported (diffusion or Gaussian policies only)")
    return "time_dim" in section or "ft_denoising_steps" in model or "denoising_steps" in model


def read_config(raw: dict[str, Any], expect: tuple[str, ...] = ("pretrain", "finetune", "eval")) -> AnyConfig:
    """Read a resolved config mapping into its typed settings (one ConfigError per problem)."""
    kind = config_kind(raw, expect)
    if kind not in expect:
        raise ConfigError(f"this is a {kind} config; expected a {' or '.join(expect)} config")
    model = raw.get("model")
    if not isinstance(model, dict):
        raise ConfigError("missing required config section 'model'")
    if kind == "pretrain":
        cls: type = PretrainConfig
        model_cls: type = DiffusionConfig
    elif kind == "finetune" and finetune_algorithm(raw) in _BASELINES:
        cls, model_cls = _BASELINES[finetune_algorithm(raw)][2:]
    elif kind == "finetune":
        cls = FinetuneConfig
        actor = model.get("actor")
        if not isinstance(actor, dict):
            raise ConfigError("missing required config section 'model.actor'")
        diffusion = _is_diffusion_network(actor, model.get("_target_"), model)
        model_cls = DiffusionPPOModelConfig if diffusion else GaussianPPOModelConfig
        if finetune_algorithm(raw) == "ppo_exact":
            model_cls = ExactDiffusionPPOModelConfig
    else:
        cls = EvalConfig
        net = model.get("network")
        if not isinstance(net, dict):
            raise ConfigError("missing required config section 'model.network'")
        diffusion = _is_diffusion_network(net, model.get("_target_"), model)
        model_cls = DiffusionConfig if diffusion else GaussianModelConfig
        if not diffusion and "action_dim" not in net and "action_dim" in raw:
            # upstream's eval_gaussian_mlp.yaml leaves the network's action_dim to the top-level key
            model = {**model, "network": {**net, "action_dim": raw["action_dim"]}}
    if "raw" in raw:
        raise ConfigError("unknown config key 'raw'")
    return read(cls, raw, "", given={"model": read(model_cls, model, "model"), "raw": raw})


def load_settings(path: str, overrides: list[str] | tuple[str, ...] = (),
                  expect: tuple[str, ...] = ("pretrain", "finetune", "eval")) -> AnyConfig:
    """Load a YAML config (with key=value overrides) and read it into typed settings."""
    from shared.config import load_config

    return read_config(load_config(path, overrides), expect)
