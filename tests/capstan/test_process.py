from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from capstan.process import ChildDiedError, ChildProcess

ROOT = Path(__file__).resolve().parents[2]


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _program_is(pid: int, name: bytes) -> bool:
    return name in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]


async def test_output_goes_to_log_and_death_is_reported(tmp_path):
    child = ChildProcess.spawn(
        "echo", ["/bin/sh", "-c", "echo hello; exit 3"], env=os.environ, log_dir=tmp_path
    )
    await asyncio.to_thread(child.proc.wait)
    assert "hello" in (tmp_path / "echo.log").read_text()
    with pytest.raises(ChildDiedError, match=r"echo exited unexpectedly with exit code 3; see .*echo\.log"):
        child.raise_if_dead()


async def test_child_runs_in_its_own_session(tmp_path):
    child = ChildProcess.spawn("sleep", ["/bin/sleep", "30"], env=os.environ, log_dir=tmp_path)
    try:
        assert os.getsid(child.pid) == child.pid != os.getsid(0)
        # the launcher exec'd the real program under the same pid
        deadline = time.monotonic() + 5
        while not _program_is(child.pid, b"sleep"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await child.stop(5)
    assert not child.alive()


async def test_stop_escalates_to_sigkill(tmp_path):
    script = "trap '' TERM; echo ready; while true; do sleep 0.1; done"
    child = ChildProcess.spawn("stubborn", ["/bin/sh", "-c", script], env=os.environ, log_dir=tmp_path)
    log = tmp_path / "stubborn.log"
    deadline = time.monotonic() + 5
    while "ready" not in log.read_text():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    began = time.monotonic()
    await child.stop(0.5)
    assert child.proc.returncode == -signal.SIGKILL
    assert time.monotonic() - began < 5


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_children_die_with_a_killed_supervisor(tmp_path):
    parent = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from capstan.process import ChildProcess
        log_dir = Path({str(tmp_path)!r})
        child = ChildProcess.spawn("sleep", ["/bin/sleep", "60"], env=os.environ, log_dir=log_dir)
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, env=env) as proc:
        try:
            assert proc.stdout is not None
            child_pid = int(proc.stdout.readline())
            time.sleep(0.3)  # let the launcher exec sleep
        finally:
            proc.kill()
    assert _wait_gone(child_pid, 5), "child survived its SIGKILLed parent"
