"""pytest plugin: stack dumps on request, and a record of tests whose pytest process crashed.

Loaded by tests/conftest.py in the controlling pytest process and in every xdist worker.

* With ``CAPSTAN_TEST_STACKS_DIR`` set, each process writes all its threads' stacks to a file
  there on SIGUSR1 (faulthandler), so a run stopped at its time limit shows where it hung
  (tests/harness/contain.py sends the signal, tests/harness/run.py prints the files).
* With ``CAPSTAN_TEST_CRASH_REPORT`` set, the controlling process writes a JSON file at the end:
  the node ids whose worker died under them (xdist reports them as failures with the text
  "crashed while running"), the other failures, and the collected tests that never ran (the
  runner ends an xdist session at the first crash: xdist's own replacement of a crashed worker
  left the session waiting for ever, twice in CI). tests/harness/run.py reads it to run the
  crashed and the unrun tests, and only them, in a new session.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CRASH_REPORT_ENV = "CAPSTAN_TEST_CRASH_REPORT"
STACKS_DIR_ENV = "CAPSTAN_TEST_STACKS_DIR"
CRASH_MARK = "crashed while running"


@dataclass
class CrashRecord:
    """What one test session saw fail, and what it never ran."""

    crashed: list[str] = field(default_factory=list)
    other_failures: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    """Collected but never reported: what a session ended early by a crash left out."""


def is_crash(report: pytest.TestReport) -> bool:
    """Whether ``report`` is xdist's stand-in for a test whose worker process died."""
    return (
        report.failed
        and report.when not in ("setup", "call", "teardown")
        and CRASH_MARK in str(report.longrepr)
    )


class _Recorder:
    """Sorts the session's failures into crashes and the rest; the controller writes them out."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.record = CrashRecord()
        self.collected: list[str] = []
        self.reported: set[str] = set()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, ids: list[str]) -> None:
        # every worker collects the same list (xdist checks); the controller collects nothing
        self.collected = list(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reported.add(report.nodeid)
        if report.failed:
            (self.record.crashed if is_crash(report) else self.record.other_failures).append(report.nodeid)

    def pytest_sessionfinish(self) -> None:
        target = os.environ.get(CRASH_REPORT_ENV)
        if not target or hasattr(self.config, "workerinput"):
            return  # only the controlling process sees every worker's reports
        not_run = [nodeid for nodeid in self.collected if nodeid not in self.reported]
        Path(target).write_text(
            json.dumps(
                {
                    "crashed": sorted(set(self.record.crashed)),
                    "otherFailures": sorted(set(self.record.other_failures)),
                    "notRun": not_run,
                }
            )
        )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Recorder(config), "capstan-crash-recorder")
    stacks = os.environ.get(STACKS_DIR_ENV)
    if stacks:
        # a file, not stderr: while pytest captures output, fd 2 leads into its capture file
        name = os.environ.get("PYTEST_XDIST_WORKER", "controller")
        dump = (Path(stacks) / f"{name}-{os.getpid()}.txt").open("w")
        config.add_cleanup(dump.close)
        faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True)


def read_crash_report(path: Path) -> CrashRecord | None:
    """The record a session wrote to ``path``; None when it wrote none (it did not end cleanly)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return CrashRecord(
        crashed=list(data["crashed"]),
        other_failures=list(data["otherFailures"]),
        not_run=list(data["notRun"]),
    )
