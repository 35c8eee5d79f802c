"""Gaussian pre-training with upstream's Gaussian_Transformer as the network (configs/hopper/
pretrain_gaussian_transformer.yaml) runs from the command line on both backends, from upstream's init."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.param_spec.transformer import INIT_STD, GaussianTransformerConfig, gaussian_transformer_spec

CONFIG = "configs/hopper/pretrain_gaussian_transformer.yaml"
SMALL = ["model.network.transformer_embed_dim=8", "model.network.transformer_num_heads=2",
         "model.network.transformer_num_layers=1", "train.max_n_episodes=4", "train.save_model_freq=1", "wandb=null"]


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_gaussian_transformer_pretraining_runs_from_the_cli(backend: str, tmp_path: Path) -> None:
    logdir = tmp_path / "run"
    assert main(["pretrain", "--config", CONFIG, "--backend", backend, "--quiet", "train.n_epochs=2",
                 f"logdir={logdir}", *SMALL]) == 0
    records = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and records[1]["loss"] < records[0]["loss"]
    ckpt = load_checkpoint(logdir / "checkpoint" / "state_2.npz")
    spec = gaussian_transformer_spec(GaussianTransformerConfig(3, 4, 11, 8, 2, 1, fixed_std=0.1), "network.")
    model = ckpt.group("model")
    assert {k: tuple(np.shape(v)) for k, v in model.items()} == dict(spec)
    first = load_checkpoint(logdir / "checkpoint" / "state_1.npz").group("model")
    # upstream's init, not torch's Linear default: position embeddings drawn N(0, 0.02) (zero under the default),
    # moved by one epoch of lr 1e-4 steps only
    pos = np.asarray(first["network.transformer.pos_emb"])
    assert 0.5 * INIT_STD < pos.std() < 2 * INIT_STD
