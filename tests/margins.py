"""How much of its error budget every judged check used in this pytest run (margin = distance / budget).

The golden gate (tests/golden/golden.py) and the parity suite (parity_tests/gate.py) record each
check here; the root conftest.py prints the worst margins of each gate after pytest's summary and,
with DPPO_MARGINS_JSON=path, writes every record there (scripts/golden/cpu_matrix.py reads it).
A margin close to 1 is a budget nearly used up: visible here before a machine that rounds
differently turns it into a failure. Checks made inside a `deliberate_drift` test are expected to
fail: for those the summary reports the weakest catch (the smallest margin by which a drift failed).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Margin:
    gate: str  # "golden" or "parity"
    check: str  # what was compared, e.g. "ppo_loss/ddim_eta_fixed/approx_kl torch"
    distance: float
    budget: float
    test: str  # pytest node id of the test that judged it
    drift: bool  # judged inside a deliberate_drift test

    @property
    def margin(self) -> float:
        if not math.isfinite(self.distance):
            return math.inf
        return self.distance / self.budget if self.budget > 0 else (0.0 if self.distance == 0 else math.inf)


LEDGER: list[Margin] = []
_current = {"test": "", "drift": False}


def start_test(nodeid: str, drift: bool) -> None:
    _current.update(test=nodeid, drift=drift)


def record(gate: str, check: str, distance: float, budget: float) -> None:
    LEDGER.append(Margin(gate, check, float(distance), float(budget), _current["test"], _current["drift"]))


def summary(top: int = 3) -> list[str]:
    """Per gate: checks judged, how many went past their budget, the `top` worst margins; and the weakest
    catch of the deliberate drifts (per drift test, its largest margin; the smallest of those)."""
    lines = []
    for gate in sorted({m.gate for m in LEDGER}):
        rows = sorted((m for m in LEDGER if m.gate == gate and not m.drift), key=lambda m: m.margin, reverse=True)
        if rows:
            failed = sum(m.margin > 1 for m in rows)
            lines.append(f"{gate} margins: {len(rows)} checks, {failed} past their budget, worst "
                         + "; ".join(f"{m.margin:.3f} {m.check}" for m in rows[:top]))
        caught = weakest_catches(gate)
        if caught:
            test, m = caught[0]
            lines.append(f"{gate} deliberate drifts: {len(caught)} tests, weakest catch margin {m.margin:.3g} "
                         f"({m.check}; {test.split('::')[-1]})")
    return lines


def weakest_catches(gate: str) -> list[tuple[str, Margin]]:
    """Per deliberate-drift test of `gate`, the check with the largest margin (the one that caught it),
    weakest first."""
    best: dict[str, Margin] = {}
    for m in LEDGER:
        if m.gate == gate and m.drift and (m.test not in best or m.margin > best[m.test].margin):
            best[m.test] = m
    return sorted(best.items(), key=lambda kv: kv[1].margin)


def rows() -> list[dict]:
    """The ledger as JSON-able rows (infinities as "inf"), margins included."""
    def clean(x: float) -> float | str:
        return x if math.isfinite(x) else "inf"

    return [{**asdict(m), "distance": clean(m.distance), "margin": clean(m.margin)} for m in LEDGER]


def add_rows(more: list[dict]) -> None:
    """Records made in another process (a pytest-xdist worker), as `rows()` gave them."""
    LEDGER.extend(Margin(r["gate"], r["check"], float(r["distance"]), float(r["budget"]), r["test"], r["drift"])
                  for r in more)


def write_json(path: Path) -> None:
    path.write_text(json.dumps(rows(), indent=0) + "\n")
