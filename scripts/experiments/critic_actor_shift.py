"""What one actor iteration of a Q-driven fine-tuner (DQL, QSM) did to the policy, judged by its own critic:
loads a run's checkpoints before and after the actor trained (torch) and, on states of the shipped demonstrations,
prints the deterministic actions' size and saturation, how far they moved, and the critic's value (the after
checkpoint's min(Q1, Q2)) of the data's actions, the old policy's and the new policy's.

A critic fitted on a few thousand on-policy transitions that rates the new actions far above the data's while the
env return collapses is being exploited off the data's support. Used for docs/evidence/experiments.md:

    .venv/bin/python scripts/experiments/critic_actor_shift.py RUN_DIR --before 4 --after 6
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from dppo.algorithms.agents import make_agent, noise_shape
from shared.checkpoint import load_checkpoint
from shared.settings import read_config


def load_agent(run: Path, itr: int) -> tuple[object, object]:
    cfg = read_config(json.loads((run / "config.json").read_text()), ("finetune",))
    agent = make_agent(cfg, "torch")
    agent.load_groups(load_checkpoint(str(run / "checkpoint" / f"state_{itr}.npz")).groups, 0)
    return cfg, agent


def critic_value(agent: object, obs: np.ndarray, actions: np.ndarray) -> float:
    """Mean over rows of min(Q1, Q2)(s, a): obs (B, To, Do), actions (B, Ta, Da)."""
    with torch.no_grad():
        q1, q2 = agent.critic(torch.from_numpy(obs), torch.from_numpy(actions.astype(np.float32)))
        return float(torch.min(q1, q2).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--before", type=int, required=True, help="checkpoint iteration before the actor trained")
    parser.add_argument("--after", type=int, required=True, help="checkpoint iteration after it trained")
    parser.add_argument("--states", type=int, default=2000)
    parser.add_argument("--data", default="data/hopper-medium-v2/train.npz")
    args = parser.parse_args()

    cfg, before = load_agent(args.run, args.before)
    _, after = load_agent(args.run, args.after)
    data = np.load(args.data)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(data["states"]) - cfg.act_steps, args.states, replace=False)
    obs = data["states"][rows][:, None, :].astype(np.float32)  # (B, 1, Do): cond_steps 1, normalised as the env's
    data_actions = np.stack([data["actions"][rows + k] for k in range(cfg.act_steps)], 1)  # (B, Ta, Da)
    noise = rng.standard_normal(noise_shape(cfg, args.states)).astype(np.float32)
    old = before.act(obs, noise, True)["actions"][:, : cfg.act_steps]
    new = after.act(obs, noise, True)["actions"][:, : cfg.act_steps]
    report = {
        "run": str(args.run), "before_itr": args.before, "after_itr": args.after, "states": args.states,
        "mean_abs_action": {"data": float(np.abs(data_actions).mean()), "before": float(np.abs(old).mean()),
                            "after": float(np.abs(new).mean())},
        "saturated_share": {"data": float((np.abs(data_actions) > 0.98).mean()),
                            "before": float((np.abs(old) > 0.98).mean()), "after": float((np.abs(new) > 0.98).mean())},
        "mean_abs_shift": float(np.abs(new - old).mean()),
        "critic_after": {"data": critic_value(after, obs, data_actions), "before": critic_value(after, obs, old),
                         "after": critic_value(after, obs, new)},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
