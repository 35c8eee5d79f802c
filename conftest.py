"""After pytest's own summary: the error-budget margins of the golden gate and the parity suite (tests/margins.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import margins


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deliberate_drift: the test breaks the math on purpose and expects a gate "
                                       "to fail; its margins are reported as catches, not as budget used")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    margins.start_test(item.nodeid, item.get_closest_marker("deliberate_drift") is not None)
    try:
        return (yield)
    finally:
        margins.start_test("", False)


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: its records travel to the controller
        workeroutput["margins"] = margins.rows()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist, in the controller: a worker finished; keep its records for the summary."""
    margins.add_rows(getattr(node, "workeroutput", {}).get("margins", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in margins.summary():
        terminalreporter.write_line(line)
    out = os.environ.get("DPPO_MARGINS_JSON")
    if out:
        margins.write_json(Path(out))
