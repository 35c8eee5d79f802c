"""The replay baselines' shared numpy machinery: the transition buffer (FIFO order, capacity,
checkpoint round trip, DIPO's action write-back), the transitions a rollout gives it (an ended
episode's final observation as next_obs), upstream's minibatch count and the seeded draws."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dppo.training.finetune import rollout
from shared.algorithms.offpolicy import (
    TransitionBuffer,
    minibatch_noise,
    minibatch_rows,
    minibatches_per_iteration,
    transitions_of,
)
from shared.data.envs import EnvSpec, make_vector_env


def _steps(T, N, start=0):
    """T steps of N envs whose every field encodes (step, env) so row order can be read back."""
    code = (np.arange(start, start + T)[:, None] * 10 + np.arange(N)[None, :]).astype(np.float32)
    return dict(obs=np.broadcast_to(code[..., None, None], (T, N, 1, 2)).copy(),
                next_obs=np.broadcast_to(code[..., None, None] + 0.5, (T, N, 1, 2)).copy(),
                actions=np.broadcast_to(code[..., None, None], (T, N, 4, 3)).copy(),
                rewards=code.astype(np.float64) / 100, terminated=(code % 3 == 0))


def test_buffer_keeps_the_last_capacity_transitions_step_major_env_minor():
    buf = TransitionBuffer(7)
    buf.extend(**_steps(2, 3))
    assert len(buf) == 6
    buf.extend(**_steps(2, 3, start=2))
    assert len(buf) == 7
    codes = buf.data["obs"][:, 0, 0]
    np.testing.assert_array_equal(codes, [12, 20, 21, 22, 30, 31, 32])  # oldest first, env by env in a step
    np.testing.assert_array_equal(buf.data["next_obs"][:, 0, 0], codes + 0.5)
    np.testing.assert_array_equal(buf.data["rewards"], codes.astype(np.float64) / 100)
    np.testing.assert_array_equal(buf.data["terminated"], codes % 3 == 0)
    assert buf.data["rewards"].dtype == np.float64 and buf.data["obs"].dtype == np.float32


def test_buffer_state_round_trips_and_set_actions_writes_back_into_its_own_copy():
    buf = TransitionBuffer(10)
    assert len(TransitionBuffer(3)) == 0
    given = _steps(3, 2)
    buf.extend(**given)
    buf.set_actions(np.array([0, 4]), np.full((2, 12), -1.0))
    assert given["actions"].min() >= 0  # the caller's rollout arrays are untouched
    other = TransitionBuffer(10)
    other.load_state({k: np.array(v) for k, v in buf.state().items()})
    for k in buf.data:
        np.testing.assert_array_equal(other.data[k], buf.data[k])
    assert np.all(other.data["actions"][[0, 4]] == -1) and np.all(other.data["actions"][[1, 2, 3, 5]] >= 0)
    empty = TransitionBuffer(4)
    empty.load_state(TransitionBuffer(4).state())
    assert len(empty) == 0
    with pytest.raises(ValueError):
        empty.rows(np.array([0]))


def test_minibatch_count_and_draws_are_upstreams_and_seeded():
    assert minibatches_per_iteration(500, 40, 1000, 64) == 1280  # upstream hopper DIPO
    assert minibatches_per_iteration(5, 3, 4, 0.5) == 1  # int() truncation
    a = minibatch_rows(0, 3, 1, 7, 50, 1000)
    assert a.min() >= 0 and a.max() < 50 and len(np.unique(a)) == 50  # with replacement, covers the rows
    np.testing.assert_array_equal(a, minibatch_rows(0, 3, 1, 7, 50, 1000))
    assert not np.array_equal(a, minibatch_rows(0, 3, 2, 7, 50, 1000))  # streams differ
    assert minibatch_noise(1, 2, 3, 4, (5, 6)).dtype == np.float32


class _ZeroAgent:
    def act(self, obs, noise, deterministic):
        return {"actions": np.zeros((len(obs), 4, 3), np.float32)}


def test_rollout_transitions_lead_to_the_final_observation_of_an_ended_episode():
    venv = make_vector_env(EnvSpec("hopper-medium-v2", 2, 1, 4, max_episode_steps=12))
    try:
        obs = venv.reset(seed=[0, 1])[0]
        ro = rollout(_ZeroAgent(), venv, obs, 5, 4, False, 0, 1, lambda n: (2, n, 4, 3))
    finally:
        venv.close()
    tr = transitions_of(ro, 4, 0.01)
    ended = ro["first"][1:] == 1  # (T, N): truncated at 12 env steps = 3 policy steps
    assert ended[2].all() and ended.sum() == 2
    # where an episode ended, next_obs is its last observation, not the reset one that obs continues from
    assert not np.allclose(tr["next_obs"][2], ro["obs"][3])
    np.testing.assert_array_equal(tr["next_obs"][:2], ro["obs"][1:3])
    np.testing.assert_array_equal(tr["next_obs"][3], ro["obs"][4])
    np.testing.assert_array_equal(tr["next_obs"][4], ro["next_obs"])
    np.testing.assert_allclose(tr["rewards"], ro["rewards"] * 0.01)
    assert tr["actions"].shape == (5, 2, 4, 3)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(capacity=st.integers(1, 40), chunks=st.lists(st.tuples(st.integers(0, 9), st.integers(1, 3)), min_size=1,
                                                    max_size=25),
       moves=st.lists(st.integers(0, 200), max_size=5))
def test_ring_buffer_holds_what_concatenating_and_truncating_would(capacity, chunks, moves):
    """However the buffer grows and wraps, its rows, write-backs and checkpoint equal the naive rule: every step
    appended in order, the last `capacity` kept."""
    buf, naive, start = TransitionBuffer(capacity), None, 0
    for T, N in chunks:
        steps = _steps(T, N, start)
        start += T
        buf.extend(**steps, returns=steps["rewards"] * 2)
        rows = {k: np.asarray(v).reshape(T * N, *np.shape(v)[2:]) for k, v in steps.items()}
        rows["returns"] = rows["rewards"] * 2
        naive = rows if naive is None else {k: np.concatenate([naive[k], rows[k]]) for k in rows}
        naive = {k: v[-capacity:] for k, v in naive.items()}
        assert len(buf) == len(naive["rewards"])
        if len(buf) and moves:
            index = np.array(moves) % len(buf)
            buf.set_actions(index, np.full((len(index), 4, 3), -1.0))
            naive["actions"][index] = -1.0
        data = buf.data
        for k, v in naive.items():
            np.testing.assert_array_equal(data[k] if data is not None else v[:0], v)
    again = TransitionBuffer(capacity)
    again.load_state(buf.state())
    for k, v in naive.items():
        np.testing.assert_array_equal(again.data[k] if len(again) else v[:0], v)
