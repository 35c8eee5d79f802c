"""RWR's part of the fine-tuning loop (dppo/training/finetune.py runs the iterations, evaluation, checkpoints and
resume): after each training rollout, reward-weighted denoising regression on the rollout's own action
chunks (upstream TrainRWRDiffusionAgent).

The rows and their weights come from shared/algorithms/rwr.py. Minibatch order, diffusion timesteps and training
noise are drawn in numpy keyed by (seed, iteration, epoch[, minibatch]), so both frameworks train on the
same numbers and a resumed run on the same as an uninterrupted one. An iteration in which no episode
finished has no rows; it makes no update (upstream would reuse the previous iteration's rows, or fail on
the first), and its record says `num_rwr_rows: 0`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent, noise_shape
from dppo.algorithms.registry import backend_class
from dppo.algorithms.starting_weights import regression_initial_params
from dppo.parity.report import Quantities, probe_quantities
from dppo.runs.phases import phase
from shared.algorithms.rwr import rwr_batch
from shared.checkpoint import Checkpoint
from shared.errors import TrainingDivergedError
from shared.precision import as_compute
from shared.settings.rwr import RWRConfig, RWRSettings


def rwr_minibatch_noise(seed: int, itr: int, epoch: int, batch: int, rows: int, denoising_steps: int,
                        chunk: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(t (rows,) int64, noise (rows, Ta, Da)) for one minibatch: upstream's torch.randint and
    torch.randn_like in DiffusionModel.loss, drawn here in numpy (float32 values, in the compute dtype)."""
    rng = np.random.default_rng([seed, itr, epoch, batch, 6])
    t = rng.integers(0, denoising_steps, rows).astype(np.int64)
    return t, as_compute(rng.standard_normal((rows, *chunk)).astype(np.float32))


def rwr_update(agent: Any, data: dict[str, np.ndarray], s: RWRSettings, denoising_steps: int, seed: int,
               itr: int) -> dict[str, float]:
    """update_epochs over shuffled minibatches of the rows (the remainder skipped, as upstream)."""
    total = len(data["weights"])
    num_batches = max(1, total // s.batch_size)
    chunk = data["actions"].shape[1:]
    losses = []
    for epoch in range(s.update_epochs):
        order = np.random.default_rng([seed, itr, epoch, 3]).permutation(total)
        for b in range(num_batches):
            rows = order[b * s.batch_size:(b + 1) * s.batch_size]
            t, noise = rwr_minibatch_noise(seed, itr, epoch, b, len(rows), denoising_steps, chunk)
            batch = {"obs": data["obs"][rows], "actions": data["actions"][rows], "weights": data["weights"][rows],
                     "t": t, "noise": noise}
            loss = agent.update(batch)["loss"]
            if not math.isfinite(loss):
                raise TrainingDivergedError(f"non-finite RWR loss at iteration {itr}, epoch {epoch}, batch {b}")
            losses.append(loss)
    return {"loss": float(np.mean(losses))}


initial_params = regression_initial_params


def build_agent(cfg: RWRConfig, backend: str, init: OrderedDict) -> object:
    return backend_class(backend, "rwr_diffusion.RWRDiffusionAgent")(cfg.diffusion, cfg.rwr, init)


class RWRTrainer:
    """RWR for dppo.training.finetune.run_iterations (see PPOTrainer there for what a trainer provides)."""

    algorithm = "rwr"
    optimizer_group = "optimizer"

    def __init__(self, cfg: RWRConfig, backend: str) -> None:
        self.cfg, self.settings = cfg, cfg.rwr
        self.agent = make_agent(cfg, backend)

    def noise_shape(self, n: int) -> tuple[int, ...]:
        return noise_shape(self.cfg, n)

    def restore(self, ckpt: Checkpoint, done_itr: int) -> None:
        self.agent.load_groups(ckpt.groups, done_itr + 1)  # the schedule steps once per iteration

    def learning_rates(self) -> dict[str, float]:
        return {"lr": self.agent.lr}

    def train(self, ro: dict[str, Any], itr: int, seed: int) -> dict[str, float]:
        s = self.settings
        data = rwr_batch(ro["obs"], ro["samples"]["actions"], ro["rewards"], ro["first"], s.gamma, s.beta,
                         s.max_reward_weight)
        if data is None:
            return {"num_rwr_rows": 0}
        with phase("update"):
            record = rwr_update(self.agent, data, s, self.cfg.diffusion.denoising_steps, seed, itr)
        record.update(num_rwr_rows=len(data["weights"]), mean_weight=float(np.mean(data["weights"])),
                      max_weight=float(np.max(data["weights"])))
        return record

    def end_iteration(self, itr: int) -> None:
        self.agent.end_iteration()

    def state_groups(self) -> dict[str, Any]:
        return self.agent.state_groups()


Trainer = RWRTrainer


# ---------------------------------------------------------------- dppo parity


def rwr_inputs(cfg: RWRConfig, agent: Any, batch: int, seed: int) -> dict[str, np.ndarray]:
    """One RWR minibatch (float32 values in the compute dtype): chunks sampled by `agent`, weights from
    random returns through shared/algorithms/rwr.py (so both the clipped and the unclipped branch occur), and the
    timesteps and training noise the driver would draw."""
    from shared.algorithms.rwr import reward_weights

    rng = np.random.default_rng([seed, 7])
    f32, s = np.float32, cfg.rwr
    obs = as_compute(rng.uniform(-1, 1, (batch, cfg.cond_steps, cfg.obs_dim)).astype(f32))
    chunk_noise = as_compute(rng.standard_normal(noise_shape(cfg, batch)).astype(f32))
    actions = as_compute(agent.act(obs, chunk_noise, deterministic=False)["actions"])
    weights = reward_weights(rng.standard_normal(batch), s.beta, s.max_reward_weight)
    t, noise = rwr_minibatch_noise(seed, 0, 0, 0, batch, cfg.diffusion.denoising_steps,
                                   (cfg.horizon_steps, cfg.action_dim))
    return {"obs": obs, "actions": actions, "weights": as_compute(weights), "t": t, "noise": noise}


def rwr_loss_probes(agents: dict[str, Any], data: dict[str, np.ndarray]) -> tuple[Any, Any]:
    """(torch probe, tf probe) of the weighted denoising loss: layers, loss, input and parameter gradients."""
    from core_tf.algorithms.rwr_diffusion import weighted_denoising_loss as tf_loss
    from core_tf.runtime.probe import probe as tf_probe
    from core_torch.algorithms.rwr_diffusion import weighted_denoising_loss as torch_loss
    from core_torch.runtime.probe import probe as torch_probe

    out = []
    for backend, run, loss in (("torch", torch_probe, torch_loss), ("tf", tf_probe, tf_loss)):
        model = agents[backend].model
        out.append(run(model, lambda obs, actions, t, noise, weights, m=model, f=loss: f(m, actions, obs, t, noise,
                                                                                          weights), data))
    return out[0], out[1]


def parity_quantities(cfg: RWRConfig, agents: dict[str, Any], fresh: dict[str, Any], init: OrderedDict,
                      batch: int, seed: int, updates: int = 3) -> Quantities:
    """`dppo parity`'s RWR section: the agents reset to `init` with fresh optimizers, then RWR's sampled chunks,
    its weighted loss with every gradient, and a few AdamW updates, end to end and teacher-forced (tf_forced
    restarts each update from torch's parameters and optimizer state)."""
    for b, agent in agents.items():
        agent.load_groups({**fresh[b], "model": init}, 0)
    rng = np.random.default_rng(seed)
    obs = as_compute(rng.uniform(-1, 1, (batch, cfg.cond_steps, cfg.obs_dim)).astype(np.float32))
    noise = as_compute(rng.standard_normal(noise_shape(cfg, batch)).astype(np.float32))
    q: Quantities = {}
    for det in (False, True):
        acts = {b: agents[b].act(obs, noise, deterministic=det)["actions"] for b in ("torch", "tf")}
        q[("rwr/act", f"deterministic={det}")] = (acts["torch"], acts["tf"])
    data = rwr_inputs(cfg, agents["torch"], batch, seed)
    q.update(probe_quantities("rwr/loss", *rwr_loss_probes(agents, data)))
    for i in range(updates):
        agents["tf_forced"].load_groups(agents["torch"].state_groups(), 0)
        losses = {b: a.update(data)["loss"] for b, a in agents.items()}
        q[("rwr/update", f"loss update {i}")] = (losses["torch"], losses["tf"])
        q[("rwr/forced/update", f"loss update {i}")] = (losses["torch"], losses["tf_forced"])
        groups = {b: a.state_groups()["model"] for b, a in agents.items()}
        for name, value in groups["torch"].items():
            q[("rwr/forced/update", f"{name} update {i}")] = (value, groups["tf_forced"][name])
            if i == updates - 1:
                q[("rwr/update", name)] = (value, groups["tf"][name])
    return q
