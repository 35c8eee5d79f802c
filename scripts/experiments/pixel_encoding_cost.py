"""How much of an image policy's compute is the ViT encoding of the camera frame (docs/evidence/robomimic.md,
section 6), on one backend: upstream's Lift image fine-tuning config's networks, real frames and states from the
Lift image demos, one thread. Medians of R calls, after a first call (traces and compiles) left out:

    act B          the agent's whole stochastic sampling call at the rollout's batch B (encoding once, the chain)
    encode B       the fine-tuned actor's encoding alone (ViT + readout, `condition`) at batch B
    encode+grad M  the encoding's forward and backward at the update's minibatch M (the actor's and the critic's
                   encoders each run once per minibatch row)

    .venv/bin/python scripts/experiments/pixel_encoding_cost.py torch|tf CKPT [B [M [R]]]   (default 5 500 20)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DPPO_DATA_DIR", str(ROOT / "data"))

from dppo.algorithms.agents import make_agent, noise_shape  # noqa: E402
from shared.settings import load_settings  # noqa: E402

CONFIG = ROOT / "tests/fixtures/upstream_cfg/cfg/robomimic/finetune/lift/ft_ppo_diffusion_mlp_img.yaml"


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # traces, compiles, first-call allocations
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return 1000 * statistics.median(times)


def main(backend: str, base: str, rollout: int, minibatch: int, repeats: int) -> None:
    # n_envs B leaves fewer minibatches than upstream's grad_accumulate 15 (refused); nothing here steps an optimizer
    cfg = load_settings(str(CONFIG), ["wandb=null", f"base_policy_path={base}", f"env.n_envs={rollout}",
                                         "train.grad_accumulate=1"], ("finetune",))
    agent = make_agent(cfg, backend)
    demos = np.load(ROOT / "data/robomimic/lift-img/train.npz")
    rows = np.arange(max(rollout, minibatch)) % len(demos["states"])

    def obs(n: int) -> dict[str, np.ndarray]:  # (n, To=1, 9) float32 and (n, 1, 3, 96, 96) uint8
        return {"state": demos["states"][rows[:n], None].astype(np.float32), "rgb": demos["images"][rows[:n], None]}

    noise = np.random.default_rng(0).standard_normal(noise_shape(cfg, rollout)).astype(np.float32)
    figures = {f"act {rollout}": median_ms(lambda: agent.act(obs(rollout), noise, deterministic=False), repeats)}
    actor = agent.model.actor_ft
    if backend == "torch":
        import torch

        torch.set_num_threads(1)

        def encode(n: int, grad: bool) -> Callable[[], Any]:
            o = obs(n)
            state, rgb = torch.from_numpy(o["state"]), torch.from_numpy(o["rgb"])

            def run() -> None:
                with torch.set_grad_enabled(grad):
                    cond = actor.condition(state, rgb)
                    if grad:
                        cond.sum().backward()
            return run
    else:
        import tensorflow as tf

        o = obs(2)
        with tf.GradientTape() as tape:  # the actor's weights the encoding uses (the ViT and the readout)
            total = tf.reduce_sum(actor.condition(tf.constant(o["state"]), tf.constant(o["rgb"])))
        named = agent.actor_named
        variables = [v for (_, v), g in zip(named, tape.gradient(total, [v for _, v in named]))
                     if g is not None]
        assert variables, "no actor weight takes part in the encoding"

        def encode(n: int, grad: bool) -> Callable[[], Any]:
            o = obs(n)
            state, rgb = tf.constant(o["state"]), tf.constant(o["rgb"])

            @tf.function(jit_compile=True)
            def run() -> Any:
                if not grad:
                    return actor.condition(state, rgb)
                with tf.GradientTape() as tape:
                    total = tf.reduce_sum(actor.condition(state, rgb))
                return tape.gradient(total, variables)
            return run
    figures[f"encode {rollout}"] = median_ms(encode(rollout, False), repeats)
    figures[f"encode+grad {minibatch}"] = median_ms(encode(minibatch, True), max(repeats // 4, 3))
    print(f"{backend}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in figures.items())
          + f"; encoding {100 * figures[f'encode {rollout}'] / figures[f'act {rollout}']:.0f}% of a sampling call")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("backend", choices=("torch", "tf"))
    p.add_argument("base", help="a pre-trained image policy's checkpoint (pre_diffusion_mlp_img)")
    p.add_argument("rollout", type=int, nargs="?", default=5, help="B: the rollout's batch (n_envs)")
    p.add_argument("minibatch", type=int, nargs="?", default=500, help="M: the update's minibatch (upstream's)")
    p.add_argument("repeats", type=int, nargs="?", default=20)
    a = p.parse_args()
    main(a.backend, a.base, a.rollout, a.minibatch, a.repeats)
