"""Typed settings: a resolved config mapping is read once, at the CLI boundary, into frozen
dataclasses (`read_config`); everything below takes those, never the raw mapping.

Kinds: PretrainConfig and GaussianPretrainConfig (dppo pretrain: a diffusion or a Gaussian policy), one
fine-tuning config per algorithm (the `config` of its entry in
shared/settings/algorithms.py, imported from its own module, e.g. shared.settings.rwr.RWRConfig) and
EvalConfig (upstream's eval configs). Upstream's own config files are accepted as they are: the kind comes
from their `_target_` where present, else from the keys; a fine-tuning config's algorithm from its
top-level or `model._target_` (PPO without either).
"""

from __future__ import annotations

from typing import Any

from shared.config.reader import read
from shared.errors import ConfigError
from shared.param_spec.families import upstream_targets
from shared.param_spec.vit import IMAGE_NETWORK_CONFIGS
from shared.settings.algorithms import ALGORITHMS, Algorithm, algorithm_of
from shared.settings.evaluation import EvalConfig
from shared.settings.exact import ExactDiffusionPPOModelConfig, ExactLikelihoodSettings
from shared.settings.finetune import (
    DPPOSettings,
    FinetuneConfig,
    PPOSettings,
    PPOTrainConfig,
)
from shared.settings.gmm import GMM_MODEL_TARGET, GMMFinetuneConfig, GMMModelConfig, GMMPretrainConfig
from shared.settings.model import (
    DiffusionConfig,
    DiffusionPPOModelConfig,
    GaussianModelConfig,
    GaussianPPOModelConfig,
    LRSchedulerConfig,
)
from shared.settings.pretrain import GaussianPretrainConfig, PretrainConfig
from shared.settings.run import EnvConfig, PolicyRunConfig

__all__ = [
    "ALGORITHMS", "Algorithm", "algorithm_of", "DPPOSettings", "DiffusionConfig", "DiffusionPPOModelConfig",
    "EnvConfig", "EvalConfig", "ExactDiffusionPPOModelConfig", "ExactLikelihoodSettings", "FinetuneConfig",
    "GaussianModelConfig", "GaussianPPOModelConfig", "GaussianPretrainConfig", "GMMFinetuneConfig", "GMMModelConfig",
    "GMMPretrainConfig", "LRSchedulerConfig", "PPOSettings",
    "PPOTrainConfig",
    "PolicyRunConfig", "PretrainConfig", "config_kind", "finetune_algorithm", "load_settings", "read_config",
]

# every fine-tuning config (ALGORITHMS) and EvalConfig are PolicyRunConfigs
AnyConfig = PretrainConfig | GaussianPretrainConfig | PolicyRunConfig  # GMMPretrainConfig: a GaussianPretrainConfig

# Upstream agents (top-level _target_) this project runs, by kind.
_UPSTREAM_AGENTS = {
    "agent.pretrain.train_diffusion_agent.TrainDiffusionAgent": "pretrain",
    "agent.pretrain.train_gaussian_agent.TrainGaussianAgent": "pretrain",
    "agent.finetune.train_ppo_diffusion_agent.TrainPPODiffusionAgent": "finetune",
    "agent.finetune.train_ppo_gaussian_agent.TrainPPOGaussianAgent": "finetune",
    **{agent: "finetune" for a in ALGORITHMS.values() for agent in a.upstream_agents},
    "agent.eval.eval_diffusion_agent.EvalDiffusionAgent": "eval",
    "agent.eval.eval_gaussian_agent.EvalGaussianAgent": "eval",
    "agent.eval.eval_diffusion_img_agent.EvalImgDiffusionAgent": "eval",
    "agent.eval.eval_gaussian_img_agent.EvalImgGaussianAgent": "eval",
}


def config_kind(raw: dict[str, Any], expect: tuple[str, ...] = ("pretrain", "finetune", "eval")) -> str:
    """'pretrain', 'finetune' or 'eval': upstream's `_target_` says; else the one kind expected (the
    command's), else the keys."""
    model = raw.get("model")
    if isinstance(model, dict) and "param_dim" in model and "sample" in raw:
        raise ConfigError("this is a reward-guided diffusion config: run it with `dppo guide train|sample|eval`")
    if (isinstance(model, dict) and "denoising_steps" in model and "algorithm" in raw and "base" in raw) or (
            "pretrain" in raw and isinstance(raw.get("pretrain"), dict) and "label_dropout" in raw["pretrain"]):
        raise ConfigError("this is a DDPO (image diffusion) config: run it with `dppo ddpo pretrain|train`")
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


_FINETUNE_AGENTS: dict[str, str] = {}
for _entry in ALGORITHMS.values():  # an agent several entries run (TrainPPOGaussianAgent) names the first
    for _agent in _entry.upstream_agents:
        _FINETUNE_AGENTS.setdefault(_agent, _entry.name)
_FINETUNE_MODELS = {a.upstream_model: a.name for a in ALGORITHMS.values() if a.upstream_model}


def finetune_algorithm(raw: dict[str, Any]) -> str:
    """'ppo' (DPPO or Gaussian PPO), 'ppo_exact' (DPPO with the exact likelihood) or a baseline's name ('rwr',
    'awr', ...): the top-level `_target_` says, else `model._target_`."""
    model = raw.get("model")
    by_agent = _FINETUNE_AGENTS.get(raw.get("_target_"))
    by_model = _FINETUNE_MODELS.get(model.get("_target_")) if isinstance(model, dict) else None
    if (by_agent is not None and by_model is not None and by_agent != by_model
            and raw.get("_target_") not in ALGORITHMS[by_model].upstream_agents):
        raise ConfigError(f"_target_ {raw.get('_target_')!r} and model._target_ {model.get('_target_')!r} "
                          "name different algorithms")
    return by_model or by_agent or "ppo"


def _is_diffusion_network(section: dict[str, Any], target: Any, model: dict[str, Any]) -> bool:
    """A diffusion policy (DiffusionMLP) or a Gaussian one: `model._target_` says, else the keys."""
    if isinstance(target, str):
        if "Gaussian" in target:
            return False
        if "Diffusion" in target:
            return True
        raise ConfigError(f"model._target_ {target!r} is not supported (diffusion or Gaussian policies only)")
    return "time_dim" in section or "ft_denoising_steps" in model or "denoising_steps" in model


def _with_action_dim(model: dict[str, Any], key: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Upstream's eval_gaussian_mlp.yaml and its SAC, RLPD, IBRL and Cal-QL configs leave a Gaussian policy
    network's action_dim to the top-level key (Gaussian_MLP needs it): filled in from there."""
    net = model.get(key)
    if isinstance(net, dict) and "action_dim" not in net and "action_dim" in raw:
        return {**model, key: {**net, "action_dim": raw["action_dim"]}}
    return model


def _pretrain_classes(raw: dict[str, Any], model: dict[str, Any]) -> tuple[type, type]:
    """(config class, model class) of a pre-training config: a Gaussian policy when model._target_ (or the
    top-level upstream agent) says so or the network has Gaussian_MLP's std keys, else a diffusion policy."""
    net = model.get("network")
    if not isinstance(net, dict):
        raise ConfigError("missing required config section 'model.network'")
    if _is_gmm(model, net):
        if raw.get("_target_") not in (None, _GAUSSIAN_PRETRAIN):
            raise ConfigError(f"_target_ {raw.get('_target_')!r} does not pre-train a GMM policy (upstream: "
                              f"{_GAUSSIAN_PRETRAIN})")
        return GMMPretrainConfig, GMMModelConfig
    target = model.get("_target_")
    if target is None:
        gaussian = raw.get("_target_") == _GAUSSIAN_PRETRAIN or any(k in net for k in _GAUSSIAN_NETWORK_KEYS)
    else:
        gaussian = not _is_diffusion_network(net, target, model)
    agent = raw.get("_target_")
    if agent is not None and (agent == _GAUSSIAN_PRETRAIN) != gaussian:
        raise ConfigError(f"_target_ {agent!r} and model._target_ {target!r} name different policy kinds")
    return (GaussianPretrainConfig, GaussianModelConfig) if gaussian else (PretrainConfig, DiffusionConfig)


def _is_gmm(model: dict[str, Any], net: dict[str, Any]) -> bool:
    """A GMM policy: model._target_ is upstream's GMMModel, or (without one) the network names a GMM family or has
    num_modes."""
    target = model.get("_target_")
    if target is not None:
        return target == GMM_MODEL_TARGET
    return net.get("_target_") in upstream_targets("gmm") or "num_modes" in net


_GAUSSIAN_PRETRAIN = "agent.pretrain.train_gaussian_agent.TrainGaussianAgent"
_GAUSSIAN_NETWORK_KEYS = ("fixed_std", "learn_fixed_std", "std_min", "std_max")


def read_config(raw: dict[str, Any], expect: tuple[str, ...] = ("pretrain", "finetune", "eval")) -> AnyConfig:
    """Read a resolved config mapping into its typed settings (one ConfigError per problem)."""
    kind = config_kind(raw, expect)
    if kind not in expect:
        raise ConfigError(f"this is a {kind} config; expected a {' or '.join(expect)} config")
    model = raw.get("model")
    if not isinstance(model, dict):
        raise ConfigError("missing required config section 'model'")
    if kind == "finetune" and finetune_algorithm(raw) != "ppo":
        _refuse_camera_frames(raw, ALGORITHMS[finetune_algorithm(raw)])
    if kind == "pretrain":
        cls, model_cls = _pretrain_classes(raw, model)
    elif kind == "finetune" and ALGORITHMS[finetune_algorithm(raw)].model_config is not None:
        entry = ALGORITHMS[finetune_algorithm(raw)]
        cls, model_cls = entry.config, entry.model_config
        model = _with_action_dim(model, "actor", raw)
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
        if not diffusion:
            model = _with_action_dim(model, "network", raw)
    if "raw" in raw:
        raise ConfigError("unknown config key 'raw'")
    settings = read(model_cls, model, "model")
    return read(cls, raw, "", given={"model": settings, "raw": raw})


_IMAGE_TARGETS = {target for net in IMAGE_NETWORK_CONFIGS for target in net.UPSTREAM_TARGETS}
_IMAGE_ALGORITHMS = "fine-tune on camera frames with PPO (DPPO or Gaussian PPO, upstream's image agents)"


def _image_network(section: Any, path: str) -> tuple[str, str] | None:
    """(key path, _target_) of the first image network (shared/param_spec/vit.py) in a raw config section, if any."""
    if not isinstance(section, dict):
        return None
    if section.get("_target_") in _IMAGE_TARGETS:
        return path, section["_target_"]
    return next((found for key, value in section.items() if (found := _image_network(value, f"{path}.{key}"))),
                None)


def _refuse_camera_frames(raw: dict[str, Any], algorithm: Algorithm) -> None:
    """The image networks and camera envs pre-train (dppo pretrain), evaluate (dppo eval) and fine-tune with PPO
    (upstream's image agents); another fine-tuning algorithm's config that names one (its actor, a critic, any
    network of its model) or a camera env is refused here in one line, before its sections are read, rather than
    with an error about another key or inside its loop."""
    found = _image_network(raw.get("model"), "model")
    if found is not None:
        raise ConfigError(f"{found[0]} is an image network ({found[1]}): {algorithm.title} fine-tunes state "
                          f"policies only; {_IMAGE_ALGORITHMS}")
    env = raw.get("env")
    wrappers = env.get("wrappers") if isinstance(env, dict) else None
    if isinstance(wrappers, dict) and wrappers.get("robomimic_image") is not None:
        raise ConfigError(f"env.wrappers.robomimic_image gives camera frames: {algorithm.title} fine-tunes state "
                          f"policies only; {_IMAGE_ALGORITHMS}")


def load_settings(path: str, overrides: list[str] | tuple[str, ...] = (),
                  expect: tuple[str, ...] = ("pretrain", "finetune", "eval")) -> AnyConfig:
    """Load a YAML config (with key=value overrides) and read it into typed settings."""
    from shared.config.loading import load_config

    return read_config(load_config(path, overrides), expect)
