"""Shipped configs that are upstream configs under our names carry upstream's values (recorded in the
vendored copies under tests/fixtures/upstream_cfg, pinned commit in its SOURCE.json): only where
files live (paths, run names, logging) may differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.config.loading import load_config

UPSTREAM = "tests/fixtures/upstream_cfg/cfg/gym"
SHIPPED = {
    "configs/hopper/pretrain_diffusion_mlp.yaml": f"{UPSTREAM}/pretrain/hopper-medium-v2/pre_diffusion_mlp.yaml",
    "configs/hopper/finetune_ppo_diffusion_mlp.yaml": f"{UPSTREAM}/finetune/hopper-v2/ft_ppo_diffusion_mlp.yaml",
    "configs/hopper/ppo_gaussian_mlp.yaml": f"{UPSTREAM}/finetune/hopper-v2/ppo_gaussian_mlp.yaml",
    # a shipped config under the name of one of upstream's hopper files carries that file's values (GMM's take
    # the keys of upstream's robomimic files: upstream ships no gym GMM config)
    **{str(p): f"{UPSTREAM}/finetune/hopper-v2/{p.name}" for p in sorted(Path("configs/hopper").glob("ft_*.yaml"))
       if Path(f"{UPSTREAM}/finetune/hopper-v2/{p.name}").is_file()},
    **{f"configs/{env}/pretrain_diffusion_mlp.yaml": f"{UPSTREAM}/pretrain/{env}-medium-v2/pre_diffusion_mlp.yaml"
       for env in ("walker2d", "halfcheetah")},
    **{f"configs/{env}/finetune_ppo_diffusion_mlp.yaml": f"{UPSTREAM}/finetune/{env}-v2/ft_ppo_diffusion_mlp.yaml"
       for env in ("walker2d", "halfcheetah")},
}
# where things are written or read, and Hydra/logging plumbing: not numbers of the method
LOCATION_KEYS = ("logdir", "name", "base_policy_path", "normalization_path", "train_dataset_path", "wandb",
                 "device", "_target_", "network_path", "hydra", "defaults")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if k in LOCATION_KEYS or k.endswith(("normalization_path", "dataset_path")):
            continue
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("ours, theirs", sorted(SHIPPED.items()))
def test_shipped_config_has_every_upstream_value(ours, theirs, monkeypatch):
    monkeypatch.setenv("DPPO_LOG_DIR", "runs")
    mine, upstream = _flat(load_config(ours)), _flat(load_config(theirs))
    missing = sorted(set(upstream) - set(mine))
    differ = {k: (mine[k], upstream[k]) for k in upstream if k in mine and mine[k] != upstream[k]}
    assert not missing and not differ, f"{ours} vs upstream: missing {missing}, differ (ours, upstream) {differ}"
    # a path is a location, but whether a fine-tuning run normalizes observations at all changes the numbers
    if "n_train_itr" in load_config(theirs)["train"]:
        assert (load_config(ours)["normalization_path"] is None) == (load_config(theirs)["normalization_path"] is None)
