"""A Hopper whose process dies at a given step, or at a given reset (for the worker-crash tests)."""

import os

import gymnasium as gym


class CrashingHopper(gym.Wrapper):
    def __init__(self, crash_at: int = 30, crash_at_reset: int | None = None, **kwargs):
        super().__init__(gym.make("Hopper-v5", **kwargs))
        self.crash_at, self.count = crash_at, 0
        self.crash_at_reset, self.resets = crash_at_reset, 0

    def reset(self, **kwargs):
        self.resets += 1
        if self.crash_at_reset is not None and self.resets >= self.crash_at_reset:
            os._exit(1)
        return self.env.reset(**kwargs)

    def step(self, action):
        self.count += 1
        if self.count >= self.crash_at:
            os._exit(1)  # the worker process dies without a word
        return self.env.step(action)


if "CrashingHopper-v0" not in gym.registry:
    gym.register("CrashingHopper-v0", entry_point="tests.cli.crashing_env:CrashingHopper")
    # never falls (episodes end by the time limit only) and dies at its second reset: the first iteration
    # runs, the second one's reset finds a dead worker
    gym.register("CrashingResetHopper-v0", entry_point="tests.cli.crashing_env:CrashingHopper",
                 kwargs={"crash_at": 10**9, "crash_at_reset": 2, "terminate_when_unhealthy": False})
