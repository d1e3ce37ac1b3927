"""The test runner behind scripts/test: containment, the time limit, and running crashed tests again.

Each case runs the runner as a separate process, as scripts/test does: it makes itself a subreaper
and reaps every child, which must not happen inside this pytest process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CONTAIN = """
import dataclasses, json, sys
from tests.harness.contain import run_contained
outcome = run_contained(json.loads(sys.argv[1]), float(sys.argv[2]))
print(json.dumps(dataclasses.asdict(outcome)))
"""


def _contain(argv: list[str], time_limit: float) -> tuple[dict[str, object], float]:
    import json

    started = time.monotonic()
    # communicate() reads to the end of stdout: it returns only once no process holds the pipe
    done = subprocess.run(
        [sys.executable, "-c", CONTAIN, json.dumps(argv), str(time_limit)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1]), time.monotonic() - started


def test_orphans_are_stopped_and_release_the_output() -> None:
    # the shell exits at once with 3; its background sleep, holding stdout, is left behind
    outcome, took = _contain(["sh", "-c", "sleep 300 & exit 3"], 60)
    assert outcome["returncode"] == 3
    assert outcome["timed_out"] is False
    assert any("sleep 300" in line for line in outcome["leftovers"])  # type: ignore[attr-defined]
    assert took < 30


def test_a_clean_command_leaves_nothing() -> None:
    outcome, _ = _contain(["sh", "-c", "exit 0"], 60)
    assert outcome == {"returncode": 0, "timed_out": False, "leftovers": []}


def test_the_time_limit_stops_the_whole_tree() -> None:
    outcome, took = _contain(["sh", "-c", "sleep 300 & sleep 300"], 1)
    assert outcome["returncode"] == 124
    assert outcome["timed_out"] is True
    assert took < 30


PROBE_CONFTEST = 'pytest_plugins = ["tests.harness.crashes"]\n'

# The largest file, so xdist schedules it first: the crash comes before most tests ran.
CRASHES_ONCE = """
import os, signal, pytest
from pathlib import Path

def test_crashes_the_first_time():
    marker = Path(os.environ["PROBE_MARKER"])
    if not marker.exists():
        marker.write_text("crashed once")
        os.kill(os.getpid(), signal.SIGSEGV)

@pytest.mark.parametrize("n", range(5))
def test_after_the_crash(n):
    with open(os.environ["PROBE_LOG"], "a") as log:
        log.write(f"after-{n}\\n")
"""

COUNTED = """
import os, time, pytest

@pytest.mark.parametrize("n", range(3))
def test_counted(n):
    time.sleep(0.2)
    with open(os.environ["PROBE_LOG"], "a") as log:
        log.write(f"{__name__}-{n}\\n")
"""
COUNTED_FILES = {f"test_counted_{i}.py": COUNTED for i in range(6)}

FAILS = """
def test_fails():
    assert 1 == 2
"""


def _probe(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    project = tmp_path / "probe"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (project / "conftest.py").write_text(PROBE_CONFTEST)
    for name, text in files.items():
        (project / name).write_text(textwrap.dedent(text))
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        PROBE_MARKER=str(tmp_path / "marker"),
        PROBE_LOG=str(tmp_path / "counted.log"),
        CAPSTAN_TEST_WORKERS="2",
        CAPSTAN_TEST_TIME_LIMIT="120",
    )
    for name in [name for name in env if name.startswith(("PYTEST_", "CAPSTAN_TEST_CRASH"))]:
        del env[name]  # this run's own xdist and harness settings are not the probe's
    return subprocess.run(
        [sys.executable, "-m", "tests.harness.run", "-p", "no:cacheprovider", "-q"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow
def test_a_crash_ends_the_session_and_a_new_one_runs_the_rest(tmp_path: Path) -> None:
    done = _probe(tmp_path, {"test_a_crash.py": CRASHES_ONCE, **COUNTED_FILES})
    assert "crashed while running 'test_a_crash.py::test_crashes_the_first_time'" in done.stdout
    assert "running it once more" in done.stderr
    assert " 0 test(s) the stopped session did not run" not in done.stderr  # some were left out
    assert done.returncode == 0, done.stdout + done.stderr
    # every test ran, and ran once: the second session took exactly what the first left out
    ran = sorted((tmp_path / "counted.log").read_text().split())
    expected = [f"test_counted_{i}-{n}" for i in range(6) for n in range(3)] + [
        f"after-{n}" for n in range(5)
    ]
    assert ran == sorted(expected)


@pytest.mark.slow
def test_no_second_run_when_something_else_failed(tmp_path: Path) -> None:
    done = _probe(tmp_path, {"test_a_crash.py": CRASHES_ONCE, "test_fails.py": FAILS})
    assert "crashed while running" in done.stdout
    assert "once more" not in done.stderr
    assert done.returncode == 1
