"""The fine-tuning algorithms, each declared once: every layer reads this table instead of keeping a list.

An entry says what the algorithm is to each layer: which upstream `_target_`s name it (the config reader),
which typed settings read its config, which application module drives it (`driver`: its agent factory, its
part of the fine-tuning loop, its parity section), what `dppo export` serves from its checkpoints and what
`dppo parity` compares. The driver is named, not imported: shared/ stays below the application layer, which
resolves it (dppo/algorithms/registry.py). Adding an algorithm is its own modules plus one entry here.

A driver module provides `initial_params(cfg)` (the canonical weights a run starts from), `build_agent(cfg,
backend, init)` (the agent of core_<backend>/algorithms/), a `Trainer` class (its part of the loop of
dppo/training/finetune.py) and, where `parity_agents` is set, `parity_quantities(...)`; optionally
`step_noise_shape(cfg, n)` when its acting consumes noise of another shape than a chain per env.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ConfigError
from shared.settings.awr import AWRConfig, AWRModelConfig
from shared.settings.calql import CalQLConfig, CalQLModelConfig
from shared.settings.dipo import DIPOConfig, DIPOModelConfig
from shared.settings.dql import DQLConfig, DQLModelConfig
from shared.settings.finetune import FinetuneConfig
from shared.settings.gmm import PPO_GMM_TARGET, GMMFinetuneConfig, GMMPPOModelConfig
from shared.settings.ibrl import IBRLConfig, IBRLModelConfig
from shared.settings.idql import IDQLConfig, IDQLModelConfig
from shared.settings.qsm import QSMConfig, QSMModelConfig
from shared.settings.rlpd import RLPDConfig, RLPDModelConfig
from shared.settings.rwr import RWRConfig, RWRModelConfig
from shared.settings.sac import SACConfig, SACModelConfig

UPSTREAM_AGENTS = "agent.finetune"
UPSTREAM_MODELS = "model.diffusion"
UPSTREAM_RL_MODELS = "model.rl"
GAUSSIAN_EXPORT_REFUSAL = ("export serves diffusion, Gaussian and GMM policies of pre-training and PPO runs; the "
                           "off-policy Gaussian actors are not exported yet")


@dataclass(frozen=True)
class Algorithm:
    name: str  # the config's `algorithm`, recorded in checkpoints
    title: str  # for people
    upstream_agents: tuple[str, ...]  # upstream top-level `_target_`s that run it (an agent several entries share
    #                                   names the first; `upstream_model` picks the others)
    upstream_model: str | None  # upstream `model._target_` that names it (None: the agent alone says)
    config: type  # typed settings of the whole config
    model_config: type | None  # of its `model` section (None: chosen by the PPO reader, diffusion or Gaussian)
    driver: str  # application module (dppo.algorithms.<name>)
    serving: str | None  # what export serves: "policy" (a diffusion policy's network.*), "dppo" (actor + actor_ft;
    #                      a Gaussian PPO run, which shares DPPO's entry, its actor.*), "network" (a Gaussian or GMM
    #                      policy's actor.*); None: refused
    serving_refusal: str = ""  # why export refuses it (serving None)
    parity_critic: bool = False  # dppo parity also probes the V critic (CriticObs) beside the policy
    parity_agents: bool = False  # the driver's parity_quantities compares whole agents (losses, updates)
    upstream_configs: tuple[str, ...] = ()  # upstream's gym config files for it (name stems)


def _upstream(agent: str, model: str | None, models: str = UPSTREAM_MODELS) -> tuple[tuple[str, ...], str | None]:
    return ((f"{UPSTREAM_AGENTS}.{agent}",), f"{models}.{model}" if model else None)


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("ppo", "DPPO / Gaussian PPO",
              (f"{UPSTREAM_AGENTS}.train_ppo_diffusion_agent.TrainPPODiffusionAgent",
               f"{UPSTREAM_AGENTS}.train_ppo_gaussian_agent.TrainPPOGaussianAgent",
               f"{UPSTREAM_AGENTS}.train_ppo_diffusion_img_agent.TrainPPOImgDiffusionAgent",
               f"{UPSTREAM_AGENTS}.train_ppo_gaussian_img_agent.TrainPPOImgGaussianAgent"), None,
              FinetuneConfig, None, "dppo.algorithms.ppo", "dppo", parity_critic=True, parity_agents=True,
              upstream_configs=("ft_ppo_diffusion_mlp", "ppo_diffusion_mlp", "ppo_gaussian_mlp")),
    Algorithm("ppo_exact", "DPPO with the exact likelihood",
              *_upstream("train_ppo_exact_diffusion_agent.TrainPPOExactDiffusionAgent",
                         "diffusion_ppo_exact.PPOExactDiffusion"),
              FinetuneConfig, None, "dppo.algorithms.ppo", "dppo", parity_critic=True, parity_agents=True,
              upstream_configs=("ft_ppo_exact_diffusion_mlp",)),
    Algorithm("ppo_gmm", "PPO with a GMM policy",
              (f"{UPSTREAM_AGENTS}.train_ppo_gaussian_agent.TrainPPOGaussianAgent",), PPO_GMM_TARGET,
              GMMFinetuneConfig, GMMPPOModelConfig, "dppo.algorithms.ppo_gmm", "network", parity_agents=True),
    # upstream ships no gym GMM config (robomimic's: ft_ppo_gmm_mlp)
    Algorithm("rwr", "RWR",
              *_upstream("train_rwr_diffusion_agent.TrainRWRDiffusionAgent", "diffusion_rwr.RWRDiffusion"),
              RWRConfig, RWRModelConfig, "dppo.algorithms.rwr", "policy", parity_agents=True,
              upstream_configs=("ft_rwr_diffusion_mlp",)),
    Algorithm("awr", "AWR",
              *_upstream("train_awr_diffusion_agent.TrainAWRDiffusionAgent", "diffusion_awr.AWRDiffusion"),
              AWRConfig, AWRModelConfig, "dppo.algorithms.awr", "policy", parity_critic=True, parity_agents=True,
              upstream_configs=("ft_awr_diffusion_mlp",)),
    Algorithm("dipo", "DIPO",
              *_upstream("train_dipo_diffusion_agent.TrainDIPODiffusionAgent", "diffusion_dipo.DIPODiffusion"),
              DIPOConfig, DIPOModelConfig, "dppo.algorithms.dipo", "policy",
              upstream_configs=("ft_dipo_diffusion_mlp",)),
    Algorithm("dql", "DQL",
              *_upstream("train_dql_diffusion_agent.TrainDQLDiffusionAgent", "diffusion_dql.DQLDiffusion"),
              DQLConfig, DQLModelConfig, "dppo.algorithms.dql", "policy",
              upstream_configs=("ft_dql_diffusion_mlp",)),
    Algorithm("idql", "IDQL",
              *_upstream("train_idql_diffusion_agent.TrainIDQLDiffusionAgent", "diffusion_idql.IDQLDiffusion"),
              IDQLConfig, IDQLModelConfig, "dppo.algorithms.idql", None,
              serving_refusal="its actions are picked among sampled chunks by its Q and V critics, which export "
                              "does not serve",
              upstream_configs=("ft_idql_diffusion_mlp",)),
    Algorithm("qsm", "QSM",
              *_upstream("train_qsm_diffusion_agent.TrainQSMDiffusionAgent", "diffusion_qsm.QSMDiffusion"),
              QSMConfig, QSMModelConfig, "dppo.algorithms.qsm", "policy",
              upstream_configs=("ft_qsm_diffusion_mlp",)),
    Algorithm("sac", "SAC (Gaussian policy)",
              *_upstream("train_sac_agent.TrainSACAgent", "gaussian_sac.SAC_Gaussian", UPSTREAM_RL_MODELS),
              SACConfig, SACModelConfig, "dppo.algorithms.sac", None, serving_refusal=GAUSSIAN_EXPORT_REFUSAL,
              parity_agents=True,
              upstream_configs=("sac_mlp",)),
    Algorithm("rlpd", "RLPD (Gaussian policy)",
              *_upstream("train_rlpd_agent.TrainRLPDAgent", "gaussian_rlpd.RLPD_Gaussian", UPSTREAM_RL_MODELS),
              RLPDConfig, RLPDModelConfig, "dppo.algorithms.rlpd", None, serving_refusal=GAUSSIAN_EXPORT_REFUSAL,
              parity_agents=True,
              upstream_configs=("rlpd_mlp", "ft_rlpd_mlp")),
    Algorithm("ibrl", "IBRL (Gaussian policy)",
              *_upstream("train_ibrl_agent.TrainIBRLAgent", "gaussian_ibrl.IBRL_Gaussian", UPSTREAM_RL_MODELS),
              IBRLConfig, IBRLModelConfig, "dppo.algorithms.ibrl", None, parity_agents=True,
              serving_refusal="its actions are picked between two policies by its Q ensemble, which export does "
                              "not serve",
              upstream_configs=("ibrl_mlp",)),
    Algorithm("calql", "Cal-QL (Gaussian policy)",
              *_upstream("train_calql_agent.TrainCalQLAgent", "gaussian_calql.CalQL_Gaussian", UPSTREAM_RL_MODELS),
              CalQLConfig, CalQLModelConfig, "dppo.algorithms.calql", None, serving_refusal=GAUSSIAN_EXPORT_REFUSAL,
              parity_agents=True,
              upstream_configs=("calql_mlp_online", "calql_mlp_offline")),
)}


def algorithm_of(cfg: object) -> Algorithm:
    """The entry of a fine-tuning config (its `algorithm`)."""
    name = getattr(cfg, "algorithm", None)
    if name not in ALGORITHMS:
        raise ConfigError(f"{type(cfg).__name__} is not a fine-tuning config of a known algorithm")
    return ALGORITHMS[name]
