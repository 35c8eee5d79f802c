"""Our fine-tuning driver against upstream DPPO's own driver (fixtures by scripts/golden/driver.py).

The fixtures hold what upstream's TrainPPODiffusionAgent.run / TrainPPOGaussianAgent.run computed
for three iterations (an evaluation iteration first) on a scripted vector env, with and without
env.reset_at_iteration. Here the same scripted env is driven through dppo/training/finetune.py's functions
(iteration_start, rollout, finished_episode_returns, score_steps with the reward scaler and GAE,
is_checkpoint_iteration) by an agent that replays upstream's network outputs (chains/actions,
values, log-probs, next-state values) and checks it is fed upstream's observations and samples.

Tolerance rule: the network outputs are upstream's own float32 numbers on both sides, and the
driver arithmetic (reward scaling, GAE, episode sums) is float64 numpy on both sides, so ours is a
float64 re-run of upstream's driver on the same inputs. Firsts, resets, episode counts and
checkpoint iterations must match exactly; scaled rewards, scaler state and episode returns to
rtol = atol = 1e-12. Upstream's one float32 operation is gamma * V(s_T) at the last step (a float32
critic output times a Python float stays float32 under NumPy 2), rounded to within 2**-24 of its
float64 value; GAE carries that error back with weights (gamma * lambda)**k <= 1, so advantages and
returns are compared with atol = 2**-24 * gamma * max|V(s_T)| + 1e-12.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from dppo.algorithms.ppo import make_reward_scaler, score_steps
from dppo.training.finetune import (
    finished_episode_returns,
    is_checkpoint_iteration,
    is_eval_iteration,
    iteration_start,
    rollout,
)
from shared.settings import load_settings

FIXTURES = Path(__file__).parent / "fixtures"
META = json.loads((FIXTURES / "driver_meta.json").read_text())
TOL = {"rtol": 1e-12, "atol": 1e-12}


class ScriptedVectorEnv:
    """The generator's scripted env behind our vector-env interface (gymnasium's reset/step)."""

    def __init__(self, schedule: list, n_envs: int) -> None:
        self.schedule, self.n = schedule, n_envs
        self.episode, self.t, self.resets = [-1] * n_envs, [0] * n_envs, 0

    def _start(self, e: int) -> None:
        self.episode[e] += 1
        self.t[e] = 0

    def _obs(self) -> np.ndarray:
        return np.array([[[e + 0.1 * self.episode[e], 0.01 * self.t[e] - 0.003 * e]] for e in range(self.n)],
                        np.float32)

    def reset(self, seed=None):
        self.resets += 1
        for e in range(self.n):
            self._start(e)
        return self._obs(), {}

    def step(self, actions):
        reward, term, trunc = np.zeros(self.n), np.zeros(self.n, bool), np.zeros(self.n, bool)
        for e in range(self.n):
            length, how = self.schedule[e][self.episode[e] % len(self.schedule[e])]
            reward[e] = 1.0 + 0.5 * e + 0.25 * self.t[e] - 0.3 * self.episode[e]
            self.t[e] += 1
            if self.t[e] >= length:
                term[e], trunc[e] = how == "term", how == "trunc"
                self._start(e)
        return self._obs(), reward, term, trunc, {}


class ReplayAgent:
    """Upstream's network outputs for iteration `itr`, checking the inputs our driver feeds it."""

    def __init__(self, fx, kind: str) -> None:
        self.fx, self.kind, self.itr, self.step, self.row = fx, kind, 0, 0, 0

    def begin(self, itr: int) -> None:
        self.itr, self.step, self.row = itr, 0, 0

    def _get(self, name):
        return self.fx[f"itr{self.itr}/{name}"]

    def act(self, obs, noise, deterministic):
        np.testing.assert_array_equal(obs, self._get("obs")[self.step])
        assert deterministic == bool(self._get("eval"))
        key = "chains" if self.kind == "diffusion" else "actions"
        n = obs.shape[0]
        sample = (self._get(key)[self.step] if f"itr{self.itr}/{key}" in self.fx.files
                  else np.zeros((n, 3, 2, 2) if self.kind == "diffusion" else (n, 2, 2)))
        self.step += 1
        out = {key: sample}
        if self.kind == "diffusion":
            out["actions"] = sample[:, -1]
        return out

    def evaluate(self, obs, samples):
        rows = slice(self.row, self.row + len(obs))
        self.row += len(obs)
        T, N = self._get("values").shape
        np.testing.assert_array_equal(obs, self._get("obs").reshape(T * N, *obs.shape[1:])[rows])
        key = "chains" if self.kind == "diffusion" else "actions"
        np.testing.assert_array_equal(samples[key], self._get(key).reshape(T * N, *samples[key].shape[1:])[rows])
        return self._get("values").reshape(-1)[rows], self._get("logprobs")[rows]

    def value(self, next_obs):
        return self._get("next_value")


def _settings(reset_at_iteration: bool):
    cfg = load_settings("configs/hopper/finetune_ppo_diffusion_mlp.yaml", (), ("finetune",))
    return dataclasses.replace(
        cfg.ppo, n_envs=META["n_envs"], n_steps=META["n_steps"], n_train_itr=META["n_train_itr"],
        val_freq=META["val_freq"], save_model_freq=META["save_model_freq"], gamma=META["gamma"],
        gae_lambda=META["gae_lambda"], logprob_batch_size=META["logprob_batch_size"], reward_scale_running=True,
        reward_scale_const=1.0, reward_scale_gamma=None, reset_at_iteration=reset_at_iteration,
        reset_after_eval_iteration=False)


@pytest.mark.parametrize("name", sorted(META["files"]))
def test_driver_matches_upstream_run(name):
    info = META["files"][name]
    fx = np.load(FIXTURES / name)
    s = _settings(info["env.reset_at_iteration"])
    venv, agent = ScriptedVectorEnv(META["schedule"], s.n_envs), ReplayAgent(fx, info["policy"])
    scaler = make_reward_scaler(s)
    obs, done, fresh = venv.reset(seed=list(range(s.n_envs)))[0], np.ones(s.n_envs), True
    for itr in range(s.n_train_itr):
        p = f"itr{itr}/"
        agent.begin(itr)
        obs, first0, reset = iteration_start(venv, obs, done, fresh, itr, s)
        assert reset == bool(fx[p + "reset"]), itr
        eval_mode = is_eval_iteration(itr, s)
        assert eval_mode == bool(fx[p + "eval"])
        ro = rollout(agent, venv, obs, s.n_steps, 2, eval_mode, 0, itr, lambda n: (n, 1), first0)
        obs, done, fresh = ro["next_obs"], ro["first"][-1], False
        np.testing.assert_array_equal(ro["first"], fx[p + "firsts"], err_msg=f"firsts, itr {itr}")
        np.testing.assert_array_equal(ro["rewards"], fx[p + "rewards"])
        np.testing.assert_array_equal(ro["terminated"], fx[p + "terminated"])
        returns = finished_episode_returns(ro["rewards"], ro["first"])
        assert len(returns) == int(fx[p + "num_episodes"]), itr
        np.testing.assert_allclose(np.mean(returns) if returns else 0.0, fx[p + "avg_episode_reward"], **TOL)
        assert is_checkpoint_iteration(itr, s) == bool(fx[p + "saved"]), itr
        if eval_mode:
            continue
        sc = score_steps(agent, ro, s, scaler)
        assert agent.row == s.n_steps * s.n_envs
        np.testing.assert_array_equal(ro["first"][:-1], fx[p + "scaler_first"])
        np.testing.assert_allclose(sc["rewards"], fx[p + "scaled_rewards"], **TOL)
        bound = 2.0**-24 * s.gamma * np.abs(fx[p + "next_value"]).max() + 1e-12
        np.testing.assert_allclose(sc["advantages"], fx[p + "advantages"], rtol=1e-12, atol=bound)
        np.testing.assert_allclose(sc["returns"], fx[p + "returns"], rtol=1e-12, atol=bound)
        state = scaler.state()
        np.testing.assert_allclose(state["ret"], fx[p + "scaler_ret"], **TOL)
        np.testing.assert_allclose(state["rms_mean"], fx[p + "scaler_mean"], **TOL)
        np.testing.assert_allclose(state["rms_var"], fx[p + "scaler_var"], **TOL)
        np.testing.assert_allclose(state["rms_count"], fx[p + "scaler_count"], **TOL)
    # the seeded reset before iteration 0 is upstream's reset at its first (evaluation) iteration
    assert venv.resets == sum(bool(fx[f"itr{i}/reset"]) for i in range(s.n_train_itr))


def test_fixtures_name_the_upstream_commit():
    assert META["upstream_commit"] == "7b10df690d54f3d29524f20daa8cf78288a21a9b"
