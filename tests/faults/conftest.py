"""The fault-injection suite prints what it measured at the end of the run."""

from __future__ import annotations

import pytest

from tests.faults.processes import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault-injection figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
