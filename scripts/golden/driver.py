"""Golden fixtures for the fine-tuning driver, made by running upstream DPPO's own driver.

Runs upstream's TrainPPODiffusionAgent.run and TrainPPOGaussianAgent.run (irom-lab/dppo, checked
out at $DPPO_UPSTREAM, default /work/upstream-dppo) for three iterations against a scripted vector
env whose episodes end mid-iteration, exactly at an iteration boundary, after a single step, by
termination and by truncation; iteration 0 is an evaluation iteration. Two scenarios per policy:
env.reset_at_iteration False ("carry") and True ("reset"). The agents are built without Hydra,
wandb or gym (object.__new__ plus attributes; wandb, hydra and upstream's env package stubbed), with
tiny upstream models. Upstream's sampling is made deterministic by seeding torch and numpy (the
scripted env ignores actions, so the noise only fixes which chains/actions are recorded).

Recorded per iteration, from inside upstream's run(): the observations fed to the policy, the
sampled chains/actions, whether envs were reset, firsts, raw and scaled rewards, values,
next-state values, log-probs, advantages and returns (the float64 arrays before upstream casts
them to float32), the logged average episode reward and number of episodes, the reward scaler's
state after the iteration, and the iterations at which upstream saves a checkpoint.

Usage (needs torch, einops and the upstream checkout; CI only reads the fixtures):
    python scripts/golden/driver.py [--out tests/golden/fixtures]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

UPSTREAM = Path(os.environ.get("DPPO_UPSTREAM", "/work/upstream-dppo"))
N_ENVS, N_STEPS, N_ITR = 3, 5, 3
OBS_DIM, ACT_DIM, COND_STEPS, HORIZON, ACT_STEPS = 2, 2, 1, 2, 2
DENOISING_STEPS, FT_DENOISING_STEPS = 4, 2
GAMMA, GAE_LAMBDA = 0.999, 0.95  # train.gamma 0.999 shows that upstream's reward scaler still uses 0.99
VAL_FREQ, SAVE_MODEL_FREQ, LOGPROB_BATCH_SIZE = 3, 2, 6  # LOGPROB_BATCH_SIZE: scoring in 3 chunks

# Per env, the episodes it plays in turn: (length in policy steps, "term" or "trunc"). An env reset
# (before an iteration, or within a step after an episode ends) starts the next one, cyclically.
SCHEDULE = [
    [(2, "term"), (1, "term"), (4, "trunc"), (3, "term"), (1, "trunc"), (6, "term")],
    [(5, "term"), (1, "term"), (1, "trunc"), (3, "term"), (2, "term"), (4, "trunc")],
    [(7, "trunc"), (2, "term"), (3, "term"), (1, "term"), (5, "term"), (2, "trunc")],
]


class _Recorder:
    def __init__(self) -> None:
        self.itr: dict[int, dict[str, object]] = {}
        self.current = 0

    def put(self, key: str, value: object) -> None:
        self.itr.setdefault(self.current, {})[key] = value


class ScriptedVectorEnv:
    """Deterministic vector env: observations and rewards are functions of (env, episode, step)."""

    def __init__(self) -> None:
        self.episode = [-1] * N_ENVS
        self.t = [0] * N_ENVS
        self.resets = 0

    def _start(self, e: int) -> None:
        self.episode[e] += 1
        self.t[e] = 0

    def _obs(self) -> np.ndarray:
        return np.array([[[e + 0.1 * self.episode[e], 0.01 * self.t[e] - 0.003 * e]] for e in range(N_ENVS)],
                        np.float32)

    def reset_all(self) -> np.ndarray:
        self.resets += 1
        for e in range(N_ENVS):
            self._start(e)
        return self._obs()

    def step_all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        reward, term, trunc = np.zeros(N_ENVS), np.zeros(N_ENVS, bool), np.zeros(N_ENVS, bool)
        for e in range(N_ENVS):
            length, how = SCHEDULE[e][self.episode[e] % len(SCHEDULE[e])]
            reward[e] = 1.0 + 0.5 * e + 0.25 * self.t[e] - 0.3 * self.episode[e]
            self.t[e] += 1
            if self.t[e] >= length:
                term[e], trunc[e] = how == "term", how == "trunc"
                self._start(e)  # reset within the step, as upstream's reset_within_step
        return self._obs(), reward, term, trunc


class UpstreamVenv(ScriptedVectorEnv):
    """The scripted env behind upstream's vector-env interface (reset_arg, dict observations)."""

    def __init__(self, rec: _Recorder, agent) -> None:
        super().__init__()
        self.rec, self.agent = rec, agent

    def reset_arg(self, options_list=None):
        return {"state": self.reset_all()}

    def step(self, action):
        obs, reward, term, trunc = self.step_all()
        entry = self.rec.itr.setdefault(self.agent.itr, {})
        entry.setdefault("rewards", []).append(reward.copy())
        entry.setdefault("terminated", []).append(term.astype(np.float64))
        entry.setdefault("done", []).append((term | trunc).astype(np.float64))
        return {"state": obs}, reward, term, trunc, [{} for _ in range(N_ENVS)]


def _stub_modules() -> None:
    for name in ("wandb", "hydra", "hydra.utils", "env", "env.gym_utils"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["env.gym_utils"].make_async = None
    sys.path.insert(0, str(UPSTREAM))


def _build_agent(kind: str, reset_at_iteration: bool, rec: _Recorder):
    import torch
    from util.reward_scaling import RunningRewardScaler
    from util.scheduler import CosineAnnealingWarmupRestarts

    torch.manual_seed(0)
    np.random.seed(0)
    from model.common.critic import CriticObs

    critic = CriticObs(cond_dim=OBS_DIM * COND_STEPS, mlp_dims=[8, 8, 8], activation_type="Mish", residual_style=True)
    if kind == "diffusion":
        from agent.finetune import train_ppo_diffusion_agent as mod
        from model.diffusion.diffusion_ppo import PPODiffusion
        from model.diffusion.mlp_diffusion import DiffusionMLP

        actor = DiffusionMLP(action_dim=ACT_DIM, horizon_steps=HORIZON, cond_dim=OBS_DIM * COND_STEPS, time_dim=4,
                             mlp_dims=[8, 8, 8], activation_type="ReLU", residual_style=True)
        model = PPODiffusion(actor=actor, critic=critic, ft_denoising_steps=FT_DENOISING_STEPS,
                             horizon_steps=HORIZON, obs_dim=OBS_DIM, action_dim=ACT_DIM,
                             denoising_steps=DENOISING_STEPS, device="cpu", gamma_denoising=0.99,
                             clip_ploss_coef=0.01, randn_clip_value=3)
        agent = object.__new__(mod.TrainPPODiffusionAgent)
        agent.reward_horizon, agent.learn_eta = ACT_STEPS, False
    else:
        from agent.finetune import train_ppo_gaussian_agent as mod
        from model.common.mlp_gaussian import Gaussian_MLP
        from model.rl.gaussian_ppo import PPO_Gaussian

        actor = Gaussian_MLP(action_dim=ACT_DIM, horizon_steps=HORIZON, cond_dim=OBS_DIM * COND_STEPS,
                             mlp_dims=[8, 8], activation_type="ReLU")
        model = PPO_Gaussian(actor=actor, critic=critic, horizon_steps=HORIZON, device="cpu", clip_ploss_coef=0.1,
                             randn_clip_value=3)
        agent = object.__new__(mod.TrainPPOGaussianAgent)

    tmp = tempfile.mkdtemp()
    vars(agent).update(
        device="cpu", seed=0, use_wandb=True, n_envs=N_ENVS, n_cond_step=COND_STEPS, obs_dim=OBS_DIM,
        action_dim=ACT_DIM, act_steps=ACT_STEPS, horizon_steps=HORIZON, max_episode_steps=100,
        reset_at_iteration=reset_at_iteration, save_full_observations=False, furniture_sparse_reward=False,
        batch_size=N_ENVS * N_STEPS, model=model, itr=0, n_train_itr=N_ITR, val_freq=VAL_FREQ, force_train=False,
        n_steps=N_STEPS, best_reward_threshold_for_success=3, max_grad_norm=None, logdir=tmp,
        result_path=os.path.join(tmp, "result.pkl"), save_trajs=False, log_freq=1, save_model_freq=SAVE_MODEL_FREQ,
        render_freq=1, n_render=0, render_video=False, traj_plotter=None, logprob_batch_size=LOGPROB_BATCH_SIZE,
        gamma=GAMMA, n_critic_warmup_itr=0, gae_lambda=GAE_LAMBDA, target_kl=None, update_epochs=2, ent_coef=0.0,
        vf_coef=0.5, reward_scale_running=True, reward_scale_const=1.0, use_bc_loss=False, bc_loss_coeff=0.0,
    )
    agent.actor_optimizer = torch.optim.AdamW(model.actor_ft.parameters(), lr=1e-3)
    agent.critic_optimizer = torch.optim.AdamW(model.critic.parameters(), lr=1e-3)
    agent.actor_lr_scheduler = CosineAnnealingWarmupRestarts(agent.actor_optimizer, first_cycle_steps=10,
                                                             max_lr=1e-3, min_lr=1e-3, warmup_steps=1)
    agent.critic_lr_scheduler = CosineAnnealingWarmupRestarts(agent.critic_optimizer, first_cycle_steps=10,
                                                              max_lr=1e-3, min_lr=1e-3, warmup_steps=1)

    # upstream's own scaler, as TrainPPOAgent builds it: RunningRewardScaler(n_envs), no gamma
    scaler = RunningRewardScaler(N_ENVS)

    def scale(reward, first):
        out = RunningRewardScaler.__call__(scaler, reward, first)
        rec.put("scaled_rewards", out.T.copy())
        rec.put("scaler_first", first.T.copy())
        rec.put("scaler_ret", scaler.ret.copy())
        rec.put("scaler_mean", np.asarray(scaler.ret_rms.mean, np.float64))
        rec.put("scaler_var", np.asarray(scaler.ret_rms.var, np.float64))
        rec.put("scaler_count", np.asarray(scaler.ret_rms.count, np.float64))
        rec.itr[rec.current]["await_next_value"] = True
        return out

    agent.running_reward_scaler = _CallableScaler(scale, scaler)

    venv = UpstreamVenv(rec, agent)
    agent.venv = venv

    def reset_env_all(verbose=False, options_venv=None, **kwargs):
        rec.current = agent.itr
        rec.put("reset", True)
        return venv.reset_arg(options_venv)

    agent.reset_env_all = reset_env_all
    agent.save_model = lambda: rec.put("saved", True)

    policy_forward = model.forward

    def forward(cond, deterministic=False, **kwargs):
        rec.current = agent.itr  # the first call of an iteration comes after its reset decision
        rec.itr.setdefault(agent.itr, {}).setdefault("obs", []).append(cond["state"].numpy().copy())
        rec.put("deterministic", bool(deterministic))
        return policy_forward(cond, deterministic=deterministic, **kwargs)

    model.forward = forward
    critic_forward = model.critic.forward

    def critic_call(cond):
        out = critic_forward(cond)
        entry = rec.itr.get(rec.current, {})
        if entry.pop("await_next_value", False):
            rec.put("next_value", out.detach().numpy().reshape(-1).astype(np.float64))
        return out

    model.critic.forward = critic_call

    real_torch = mod.torch
    names = (["chains" if kind == "diffusion" else "actions", "returns", "values", "advantages", "logprobs"])

    class TorchProxy:
        def __getattr__(self, name):
            return getattr(real_torch, name)

        def tensor(self, x, *args, **kwargs):
            entry = rec.itr.setdefault(rec.current, {})
            n = entry.setdefault("_tensor_calls", 0)
            entry[names[n]] = np.array(x, copy=True)
            entry["_tensor_calls"] = n + 1
            return real_torch.tensor(x, *args, **kwargs)

    mod.torch = TorchProxy()

    def wandb_log(data, step, commit=False):
        for key, value in data.items():
            if key.startswith("num episode"):
                rec.itr.setdefault(step, {})["num_episodes"] = int(value)
            if key.startswith("avg episode reward"):
                rec.itr.setdefault(step, {})["avg_episode_reward"] = float(value)

    mod.wandb = types.SimpleNamespace(log=wandb_log)

    real_np = mod.np

    class NumpyProxy:
        """upstream's episode accounting calls np.where(firsts_trajs[:, env] == 1) once per env."""

        def __getattr__(self, name):
            return getattr(real_np, name)

        def where(self, *args):
            if len(args) == 1:
                rec.itr.setdefault(agent.itr, {}).setdefault("firsts", []).append(np.asarray(args[0], np.float64))
            return real_np.where(*args)

    mod.np = NumpyProxy()
    return agent, mod, real_torch, real_np


class _CallableScaler:
    def __init__(self, fn, scaler) -> None:
        self.fn, self.scaler = fn, scaler

    def __call__(self, reward, first):
        return self.fn(reward, first)


def run_upstream(kind: str, reset_at_iteration: bool) -> dict[str, np.ndarray]:
    """Three iterations of upstream's run() (one call: the state carried across iterations is local
    to it); what it computed, per iteration, as flat "itr<i>/<name>" arrays."""
    rec = _Recorder()
    agent, mod, real_torch, real_np = _build_agent(kind, reset_at_iteration, rec)
    try:
        agent.run()
    finally:
        mod.torch, mod.np = real_torch, real_np
    out: dict[str, np.ndarray] = {}
    for itr in range(N_ITR):
        e = rec.itr[itr]
        p = f"itr{itr}/"
        out[p + "obs"] = np.stack(e["obs"])
        out[p + "firsts"] = np.stack(e["firsts"], axis=1)
        out[p + "rewards"] = np.stack(e["rewards"])
        out[p + "terminated"] = np.stack(e["terminated"])
        out[p + "done"] = np.stack(e["done"])
        out[p + "reset"] = np.asarray(bool(e.get("reset", False)))
        out[p + "saved"] = np.asarray(bool(e.get("saved", False)))
        out[p + "eval"] = np.asarray(bool(e["deterministic"]))
        out[p + "num_episodes"] = np.asarray(e["num_episodes"])
        out[p + "avg_episode_reward"] = np.asarray(e["avg_episode_reward"])
        for key in ("chains", "actions", "returns", "values", "advantages", "logprobs", "scaled_rewards",
                    "scaler_first", "next_value", "scaler_ret", "scaler_mean", "scaler_var", "scaler_count"):
            if key in e:
                out[p + key] = np.asarray(e[key])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/golden/fixtures")
    args = ap.parse_args()
    _stub_modules()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "-C", str(UPSTREAM), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    files = {}
    for kind in ("diffusion", "gaussian"):
        for scenario, reset in (("carry", False), ("reset", True)):
            arrays = run_upstream(kind, reset)
            name = f"driver_{kind}_{scenario}.npz"
            np.savez(out / name, **arrays)
            files[name] = {"policy": kind, "env.reset_at_iteration": reset}
    meta = {"upstream": "irom-lab/dppo", "upstream_commit": commit, "generator": "scripts/golden/driver.py",
            "n_envs": N_ENVS, "n_steps": N_STEPS, "n_train_itr": N_ITR, "val_freq": VAL_FREQ,
            "save_model_freq": SAVE_MODEL_FREQ, "logprob_batch_size": LOGPROB_BATCH_SIZE, "gamma": GAMMA,
            "gae_lambda": GAE_LAMBDA, "schedule": SCHEDULE, "files": files}
    (out / "driver_meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {len(files)} fixtures to {out}")


if __name__ == "__main__":
    main()
