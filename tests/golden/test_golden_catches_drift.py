"""The golden gate is not vacuous: a one-line drift in shared/ or in the driver makes it fail.

Such a drift hits both twins at once, so twin-vs-twin parity (parity_tests/) cannot see it; only
the comparison with upstream's own numbers can. Each test first runs a golden comparison unpatched
(it must pass), then applies one deliberate drift with monkeypatch (no source file is edited) and
runs the same comparison again, through the golden tests' own functions, expecting it to fail and
naming the check that failed. A drift is patched wherever its name is looked up: in the module
that defines it and in every module that imported it by name (tests/golden/golden.py, `patch_everywhere`).
An algorithm's own drift cases live beside its golden test (e.g. tests/golden/test_qsm.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import core_tf.algorithms.ppo_diffusion
import core_tf.diffusion.model
import core_torch.algorithms.ppo_diffusion
import core_torch.diffusion.model
import dppo.algorithms.ppo
import dppo.training.finetune
import shared.algorithms.ppo_math
import shared.algorithms.returns
import shared.data.d4rl
import shared.diffusion.sampling_plan
import tests.golden.test_d4rl as d4rl_golden
import tests.golden.test_golden_driver as driver_golden
import tests.golden.test_lr_schedule as lr_golden
import tests.golden.test_ppo_loss as ppo_golden
import tests.golden.test_sampling as sampling_golden
from shared.lr_schedule import CosineWarmupRestarts
from tests.golden.golden import Case, assert_matches_upstream, patch_everywhere

pytestmark = pytest.mark.deliberate_drift
BACKENDS = ["torch", "tf"]
DRIVER_FILES = sorted(driver_golden.META["files"])
CARRY_FILES = [n for n in DRIVER_FILES if not driver_golden.META["files"][n]["env.reset_at_iteration"]]
# the twins' modules that read shared/ by name: a drift there must reach both
TWIN_SAMPLERS = {core_torch.diffusion.model.__name__, core_tf.diffusion.model.__name__}
TWIN_PPO = {core_torch.algorithms.ppo_diffusion.__name__, core_tf.algorithms.ppo_diffusion.__name__}
PPO_CASE = "ddpm_norm0_q010_vclip0_bc0"  # DDPM, K = 3 fine-tuned steps, gamma_denoising 0.99, clipping active


# ------------------------------------------------ driver (dppo/training/finetune.py, dppo/algorithms/ppo.py)

def _run_driver_golden(name: str) -> None:
    driver_golden.test_driver_matches_upstream_run(name)


def _driver_failure(name: str) -> tuple[str, int]:
    """Run the driver golden comparison expecting a failure; (the fixture entry it failed on, iteration)."""
    with pytest.raises(AssertionError) as info:
        _run_driver_golden(name)
    here = Path(driver_golden.__file__).resolve()
    entry = next(e for e in reversed(info.traceback) if Path(str(e.path)).resolve() == here)
    statement = str(entry.statement)
    found = re.search(r'fx\[p \+ "(\w+)"\]', statement)
    check = found.group(1) if found else statement.strip()
    if "firsts" in statement and "err_msg" in statement:
        check = "firsts"
    return check, int(entry.locals["itr"])


@pytest.mark.parametrize("name", DRIVER_FILES)
def test_gae_with_lambda_off_fails_driver_golden_on_advantages(name, monkeypatch):
    _run_driver_golden(name)
    original = shared.algorithms.returns.gae

    def drifted(rewards, values, next_value, terminated, gamma, gae_lambda):
        return original(rewards, values, next_value, terminated, gamma, gae_lambda * 0.99)

    assert "dppo.algorithms.ppo" in patch_everywhere(monkeypatch, shared.algorithms.returns, "gae", drifted)
    check, itr = _driver_failure(name)
    assert check == "advantages", (check, itr)


@pytest.mark.parametrize("name", DRIVER_FILES)
def test_reward_scaler_with_train_gamma_fails_driver_golden_on_scaled_rewards(name, monkeypatch):
    """Upstream's scaler discounts with 0.99 whatever train.gamma is (0.999 in the fixtures)."""
    _run_driver_golden(name)
    monkeypatch.setattr(dppo.algorithms.ppo, "UPSTREAM_REWARD_SCALE_GAMMA", driver_golden.META["gamma"])
    check, itr = _driver_failure(name)
    assert check == "scaled_rewards", (check, itr)


@pytest.mark.parametrize("name", DRIVER_FILES)
def test_counting_one_step_episodes_fails_driver_golden_on_episode_count(name, monkeypatch):
    _run_driver_golden(name)

    def drifted(rewards, first):  # finished_episode_returns without its `b - a > 1` rule
        out = []
        for e in range(rewards.shape[1]):
            starts = np.flatnonzero(first[:, e] == 1)
            out += [float(rewards[a:b, e].sum()) for a, b in zip(starts[:-1], starts[1:])]
        return out

    patch_everywhere(monkeypatch, dppo.training.finetune, "finished_episode_returns", drifted)
    check, itr = _driver_failure(name)
    assert check == "num_episodes", (check, itr)


@pytest.mark.parametrize("name", CARRY_FILES)
def test_marking_every_iteration_start_as_episode_start_fails_driver_golden_on_firsts(name, monkeypatch):
    """Without env.reset_at_iteration an iteration goes on with the running episodes: first[0] is the
    last iteration's done flags, not all ones."""
    _run_driver_golden(name)
    original = dppo.training.finetune.iteration_start

    def drifted(venv, obs, done, fresh, itr, s):
        obs, first0, reset = original(venv, obs, done, fresh, itr, s)
        return obs, np.ones_like(first0), reset

    patch_everywhere(monkeypatch, dppo.training.finetune, "iteration_start", drifted)
    check, itr = _driver_failure(name)
    assert (check, itr) == ("firsts", 1)


# ---------------------------------------------------------------- sampling plan (shared/diffusion/sampling_plan.py)

def _eval_chain_check(backend: str) -> None:
    case = Case("sampling", "eval_ddpm")
    assert_matches_upstream(sampling_golden._eval_sample(case, backend)["actions"], case, "actions", backend)


def _scaled_mean_xt(monkeypatch):
    original = shared.diffusion.sampling_plan.sampling_plan

    def drifted(*args, **kwargs):
        plan = original(*args, **kwargs)
        return type(plan)(**{**plan.__dict__, "mean_xt": plan.mean_xt * 1.001})

    assert set(patch_everywhere(monkeypatch, shared.diffusion.sampling_plan, "sampling_plan", drifted)) >= TWIN_SAMPLERS


def _noise_at_last_eval_step(monkeypatch):
    """Evaluation DDPM sampling without its `ts == 0 -> std 0` rule: the last step adds floored noise."""
    original = shared.diffusion.sampling_plan.sampling_plan

    def drifted(*args, **kwargs):
        plan = original(*args, **kwargs)
        if plan.alpha is None and plan.std[-1] == 0.0:  # a deterministic DDPM plan
            std = np.maximum(np.exp(0.5 * plan.log_variance), shared.diffusion.sampling_plan.DDPM_EVAL_MIN_STD)
            return type(plan)(**{**plan.__dict__, "std": std})
        return plan

    assert set(patch_everywhere(monkeypatch, shared.diffusion.sampling_plan, "sampling_plan", drifted)) >= TWIN_SAMPLERS


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("drift", [_scaled_mean_xt, _noise_at_last_eval_step],
                         ids=["mean_xt_x1.001", "noise_at_t0"])
def test_sampling_plan_drift_fails_evaluation_chain_golden(drift, backend, monkeypatch):
    _eval_chain_check(backend)
    drift(monkeypatch)
    with pytest.raises(AssertionError, match=r"sampling/eval_ddpm/actions .*exceeds the budget"):
        _eval_chain_check(backend)


# ---------------------------------------------------------------- LR schedule (shared/lr_schedule.py)

LR_WARMUP_CASES = [n for n in lr_golden.cases("lr_schedule")
                   if Case("lr_schedule", n).meta["settings"].get("warmup_steps", 0) > 0]
LR_CHECKS = {"shared": lr_golden.test_shared_schedule_matches_upstream_scheduler,
             "torch": lr_golden.test_torch_scheduler_matches_upstream_scheduler,
             "tf": lr_golden.test_tf_schedule_matches_upstream_scheduler_in_float32}


@pytest.mark.parametrize("consumer", sorted(LR_CHECKS))
def test_warmup_off_by_one_step_fails_lr_schedule_golden(consumer, monkeypatch):
    name = LR_WARMUP_CASES[0]
    LR_CHECKS[consumer](name)
    original = CosineWarmupRestarts.__call__

    def drifted(self, step):  # the warm-up ramp one step ahead: (s + 1) / warmup_steps
        if step > 0:
            cycle, s, _ = self.position(step)
            if s < self.warmup_steps:
                peak = self.max_lr * self.gamma**cycle
                return float(self.min_lr + (peak - self.min_lr) * (s + 1) / self.warmup_steps)
        return original(self, step)

    monkeypatch.setattr(CosineWarmupRestarts, "__call__", drifted)
    with pytest.raises(AssertionError, match=r"lr_schedule/.*lr|Arrays are not equal"):
        LR_CHECKS[consumer](name)


# ---------------------------------------------------------------- PPO loss (shared/algorithms/ppo_math.py)

def _ppo_terms_check(backend: str) -> None:
    case = Case("ppo_loss", PPO_CASE)
    ppo_golden.assert_terms_match_upstream(case, ppo_golden.our_terms(case, backend), backend)  # fresh agents


def _discount_exponent_off_by_one(monkeypatch):
    patched = patch_everywhere(monkeypatch, shared.algorithms.ppo_math, "denoising_discount",
                     lambda k, gamma: gamma ** (k - np.arange(k)).astype(np.float64))
    assert set(patched) >= TWIN_PPO


def _clip_schedule_reversed(monkeypatch):
    original = shared.algorithms.ppo_math.clip_coefficients
    patched = patch_everywhere(monkeypatch, shared.algorithms.ppo_math, "clip_coefficients",
                               lambda *a: original(*a)[::-1].copy())
    assert set(patched) >= TWIN_PPO


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("drift", "term"), [(_discount_exponent_off_by_one, "pg_loss"),
                                             (_clip_schedule_reversed, "pg_loss")],
                         ids=["denoising_discount", "clip_coefficients"])
def test_ppo_math_drift_fails_ppo_loss_golden(drift, term, backend, monkeypatch):
    _ppo_terms_check(backend)
    drift(monkeypatch)
    with pytest.raises(AssertionError, match=rf"ppo_loss/{PPO_CASE}/{term} {backend}: .*exceeds the budget"):
        _ppo_terms_check(backend)


# ---------------------------------------------------------------- D4RL conversion (shared/data/d4rl.py)

def _keep_zero_return_episodes(monkeypatch):
    monkeypatch.setattr(shared.data.d4rl.convert_d4rl_hdf5, "__defaults__", (False,))


def _episode_end_one_step_late(monkeypatch):
    original = shared.data.d4rl._check

    def drifted(path, raw):
        arrays = original(path, raw)
        for key in ("terminals", "timeouts"):
            arrays[key] = np.concatenate([[0], arrays[key][:-1]]).astype(arrays[key].dtype)
        return arrays

    monkeypatch.setattr(shared.data.d4rl, "_check", drifted)


@pytest.mark.parametrize("drift", [_keep_zero_return_episodes, _episode_end_one_step_late],
                         ids=["keep_zero_return_episodes", "split_one_step_late"])
def test_d4rl_conversion_drift_fails_d4rl_golden(drift, tmp_path, monkeypatch):
    (tmp_path / "clean").mkdir()
    (tmp_path / "drift").mkdir()
    d4rl_golden.test_d4rl_conversion_matches_upstream_script(tmp_path / "clean")
    drift(monkeypatch)
    # the first array compared is train/states (obs_dim 3): the drift keeps a different set of transitions
    with pytest.raises(AssertionError, match=r"shape \(\d+, 3\) differs from upstream's \(51, 3\)"):
        d4rl_golden.test_d4rl_conversion_matches_upstream_script(tmp_path / "drift")
