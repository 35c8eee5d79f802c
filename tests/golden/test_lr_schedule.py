"""shared/lr_schedule.py and both twins' schedulers against upstream CosineAnnealingWarmupRestarts."""

from __future__ import annotations

import numpy as np
import pytest

from shared.lr_schedule import CosineWarmupRestarts
from tests.golden.golden import Case, assert_matches_upstream, cases


def _schedule(case: Case) -> CosineWarmupRestarts:
    return CosineWarmupRestarts(**case.meta["settings"])


@pytest.mark.parametrize("name", cases("lr_schedule"))
def test_shared_schedule_matches_upstream_scheduler(name: str) -> None:
    case = Case("lr_schedule", name)
    assert_matches_upstream(_schedule(case).table(case.meta["steps"]), case, "lr", "shared")


@pytest.mark.parametrize("name", cases("lr_schedule"))
def test_torch_scheduler_matches_upstream_scheduler(name: str) -> None:
    import torch

    from core_torch.runtime.lr_schedule import CosineAnnealingWarmupRestarts

    case = Case("lr_schedule", name)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = CosineAnnealingWarmupRestarts(opt, _schedule(case))
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(case.meta["steps"] - 1):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert_matches_upstream(np.array(lrs), case, "lr", "torch")


@pytest.mark.parametrize("name", cases("lr_schedule"))
def test_tf_schedule_matches_upstream_scheduler_in_float32(name: str) -> None:
    """The Keras schedule holds a float32 table: compared to upstream rounded to float32."""
    from core_tf.runtime.lr_schedule import CosineAnnealingWarmupRestarts

    case = Case("lr_schedule", name)
    steps = case.meta["steps"]
    table = CosineAnnealingWarmupRestarts(_schedule(case), steps).table.numpy()[:steps]
    np.testing.assert_array_equal(table, case.up32["lr"].astype(np.float32))
