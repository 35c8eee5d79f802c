"""The parity suite's verdicts on a report: every row's margin goes to tests/margins.py, then pass or fail."""

from __future__ import annotations

from dppo.parity.report import ParityReport, Row
from tests import margins


def _record(report: ParityReport) -> None:
    for r in report.rows:
        margins.record("parity", f"{r.section} {r.name}", r.value, r.limit)


def assert_twins_agree(report: ParityReport) -> None:
    _record(report)
    assert report.ok, "\n" + report.table()


def assert_twins_disagree(report: ParityReport) -> list[Row]:
    """For a deliberate drift: the gate must fail; returns the rows past their limit."""
    _record(report)
    assert not report.ok, "the drift passed the gate:\n" + report.table()
    return report.failures
