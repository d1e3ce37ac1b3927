"""The test suite's runner (scripts/test): pytest, contained, with crashed tests run once more.

    python -m tests.harness.run [pytest arguments]

* pytest runs in ``CAPSTAN_TEST_WORKERS`` xdist processes (default 2; 0 = in one process) under
  :func:`tests.harness.contain.run_contained`: nothing it starts outlives it, and it is stopped,
  with every Python process's stacks printed, after ``CAPSTAN_TEST_TIME_LIMIT`` seconds
  (default 2400).
* A crash of an xdist worker (a signal, not a verdict: a test process has segfaulted in CI) ends
  the session; the test it ran and every test the session did not run then run in a new session,
  within half the time limit, only when nothing else failed; the crash stays in the output.
  ``CAPSTAN_TEST_CRASH_RERUNS=0`` turns that off.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.harness.contain import run_contained
from tests.harness.crashes import CRASH_REPORT_ENV, STACKS_DIR_ENV, read_crash_report

DEFAULT_TIME_LIMIT = 2400.0
TESTS_FAILED = 1
"""pytest's exit code when tests ran and some failed."""


def _print_stacks(directory: Path) -> None:
    for path in sorted(directory.glob("*.txt")):
        text = path.read_text(errors="replace").strip()
        if text:
            sys.stderr.write(f"\n== stacks of {path.stem}\n{text}\n")
    sys.stderr.flush()


def run_pytest(arguments: Sequence[str], *, workers: str, time_limit: float, work: Path) -> tuple[int, Path]:
    """One contained pytest run; its return code and the crash report it was asked to write."""
    report = work / f"crashes-{len(list(work.glob('crashes-*')))}.json"
    stacks = work / f"stacks-{len(list(work.glob('stacks-*')))}"
    stacks.mkdir()
    env = dict(os.environ, **{CRASH_REPORT_ENV: str(report), STACKS_DIR_ENV: str(stacks)})
    outcome = run_contained(
        # At the first crash xdist stops the session (--max-worker-restart 0) instead of replacing
        # the worker: its replacement has left a session waiting for ever with idle workers.
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            workers,
            "--dist",
            "loadfile",
            "--max-worker-restart",
            "0",
            *arguments,
        ],
        time_limit,
        env=env,
    )
    if outcome.timed_out:
        _print_stacks(stacks)
    return outcome.returncode, report


def main(arguments: Sequence[str]) -> int:
    """Run the suite as the module docstring says; the exit code is pytest's (124 on the time limit)."""
    workers = os.environ.get("CAPSTAN_TEST_WORKERS", "2")
    time_limit = float(os.environ.get("CAPSTAN_TEST_TIME_LIMIT", DEFAULT_TIME_LIMIT))
    reruns = os.environ.get("CAPSTAN_TEST_CRASH_RERUNS", "1") != "0"
    with tempfile.TemporaryDirectory(prefix="capstan-tests-") as scratch:
        work = Path(scratch)
        returncode, report = run_pytest(arguments, workers=workers, time_limit=time_limit, work=work)
        record = read_crash_report(report)
        if (
            returncode != TESTS_FAILED
            or record is None
            or not record.crashed
            or record.other_failures
            or not reruns
        ):
            return returncode
        sys.stderr.write(
            f"\n== a pytest process died under {', '.join(record.crashed)} (see 'crashed while running'"
            " above), which is not a test result; running it once more, with the"
            f" {len(record.not_run)} test(s) the stopped session did not run, in a new session\n"
        )
        sys.stderr.flush()
        returncode, _ = run_pytest(
            # half the limit: both runs together stay well inside CI's 90 minutes
            ["-p", "no:cacheprovider", *record.crashed, *record.not_run],
            workers=workers,
            time_limit=time_limit / 2,
            work=work,
        )
        return returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
