"""After pytest's own summary: the error-budget margins of the golden gate and the parity suite (tests/margins.py).
Test files are collected longest first (tests/file_seconds.json), for the pytest-xdist workers to take them in
that order (scripts/test.sh: --dist loadfile --no-loadscope-reorder)."""

from __future__ import annotations

import json
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


FILE_SECONDS = Path(__file__).parent / "tests" / "file_seconds.json"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest file first (longest-processing-time order), each file's tests in their own order: the workers take
    files as they free up, so a long file started last would leave the other worker idle until it ends. A file
    without a measured figure (scripts/dev/test_file_seconds.py) counts as the longest."""
    seconds = json.loads(FILE_SECONDS.read_text()) if FILE_SECONDS.is_file() else {}
    unknown = max(seconds.values(), default=0.0) + 1.0
    root = Path(str(config.rootpath))
    items.sort(key=lambda item: -seconds.get(Path(str(item.path)).relative_to(root).as_posix(), unknown))


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
