"""Run plumbing shared by the drivers (pretrain, finetune, eval, collect): environments from a
config, torch threads for rollouts and updates."""

from __future__ import annotations

import os

import gymnasium as gym

from shared.config.loading import locate_data_file
from shared.data.dataset import load_normalization
from shared.data.envs import EnvSpec, make_vector_env
from shared.data.robomimic_image_demos import ensure_image_dataset
from shared.settings import EvalConfig, FinetuneConfig


def set_rollout_threads(backend: str) -> None:
    """Rollouts are many small forward passes: OpenMP spin-waiting with more threads than idle cores
    slowed them ~100x on a busy 2-core machine, so torch gets one thread unless DPPO_TORCH_THREADS says."""
    if backend == "torch":
        import torch

        torch.set_num_threads(int(os.environ.get("DPPO_TORCH_THREADS", "1")))


def set_update_threads(backend: str) -> None:
    """Scoring a rollout and the PPO update are large matmuls with nothing else running: all cores
    (1.7x faster than one thread on the hopper minibatch) unless DPPO_TORCH_UPDATE_THREADS says."""
    if backend == "torch":
        import torch

        torch.set_num_threads(int(os.environ.get("DPPO_TORCH_UPDATE_THREADS", str(os.cpu_count() or 1))))


def env_spec(cfg: FinetuneConfig | EvalConfig, n_envs: int | None = None) -> EnvSpec:
    """The vector env a fine-tuning or eval config describes: its suite (gymnasium, robomimic, ...), the
    normalization file loaded and checked (found in upstream's data layout as well as ours)."""
    norm_path = cfg.normalization_path
    norm = (load_normalization(ensure_image_dataset(locate_data_file(norm_path)), cfg.obs_dim, cfg.action_dim)
            if norm_path else None)
    env, suite = cfg.env, cfg.env_suite
    asynchronous = env.asynchronous or suite.in_worker_processes  # camera envs: always
    return EnvSpec(cfg.env_name, n_envs or env.n_envs, cfg.cond_steps, cfg.act_steps, env.max_episode_steps, norm,
                   asynchronous, suite)



def run_vector_env(cfg: FinetuneConfig | EvalConfig, spec: EnvSpec) -> gym.vector.VectorEnv:
    """The spec's vector env (not yet reset): in Ray actors when the config has env.ray, in two worker processes
    when env.overlap, else in this process (or one process per env when env.asynchronous)."""
    if cfg.env.ray is not None:
        from dppo.envs.ray_vector import RayVectorEnv

        return RayVectorEnv(spec, cfg.env.ray)
    if cfg.env.overlap:
        from dppo.envs.process_vector import ProcessVectorEnv

        return ProcessVectorEnv(spec, 2)
    return make_vector_env(spec)
