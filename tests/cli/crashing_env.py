"""A Hopper whose process dies at a given step (for the worker-crash test)."""

import os

import gymnasium as gym


class CrashingHopper(gym.Wrapper):
    def __init__(self, crash_at: int = 30, **kwargs):
        super().__init__(gym.make("Hopper-v5", **kwargs))
        self.crash_at, self.count = crash_at, 0

    def step(self, action):
        self.count += 1
        if self.count >= self.crash_at:
            os._exit(1)  # the worker process dies without a word
        return self.env.step(action)


if "CrashingHopper-v0" not in gym.registry:
    gym.register("CrashingHopper-v0", entry_point="tests.cli.crashing_env:CrashingHopper")
