"""Run a command so that nothing it starts outlives it, within a time limit.

Why: a pytest process that dies by a signal (the Temporal SDK's native core has segfaulted in
CI, sdk-rust #1015) leaves its dev server behind, and that server holds the test run's stdout
and stderr open. A CI runner that reads the output to its end then waits for ever, long after
pytest has finished. Here the runner becomes a child subreaper (Linux ``prctl``), so every
orphan of the command is re-parented to it instead of to init; when the command exits, what is
left is named and stopped, and its output pipes close.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

PR_SET_CHILD_SUBREAPER = 36
STOP_GRACE = 10.0
"""Seconds left-behind processes get between SIGTERM and SIGKILL."""
DUMP_GRACE = 3.0
"""Seconds Python processes get to print their stacks before a timed-out command is stopped."""
POLL = 0.2
TIMED_OUT = 124
"""The return code of a command stopped at its time limit (as coreutils' ``timeout``)."""


@dataclass
class Outcome:
    """How a contained command ended."""

    returncode: int
    timed_out: bool = False
    leftovers: list[str] = field(default_factory=list)
    """``pid command`` of each process still running after the command ended."""


def become_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")


def _parents() -> dict[int, int]:
    """Every live process's parent, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone while we looked
        # the command name in parentheses may itself hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(root: int) -> list[int]:
    """Pids of every live descendant of ``root``, parents before their children."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found: list[int] = []
    queue = list(children.get(root, []))
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def describe(pid: int) -> str:
    """``pid command line`` of a process, shortened; ``pid ?`` when it is gone or a zombie."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"{pid} ?"
    text = " ".join(part.decode(errors="replace") for part in argv if part)
    return f"{pid} {text[:160] or '?'}"


def _is_python(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/exe").resolve().name.startswith("python")
    except OSError:
        return False


def _signal_all(pids: Sequence[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _reap() -> dict[int, int]:
    """Collect every child that has ended; their exit codes by pid."""
    ended: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended[pid] = os.waitstatus_to_exitcode(status)


def stop_descendants(grace: float = STOP_GRACE) -> list[str]:
    """SIGTERM every descendant of this process, SIGKILL what is left after ``grace``; reap them.

    Returns the descriptions of the processes that were running when it was called.
    """
    pids = descendants(os.getpid())
    found = [describe(pid) for pid in pids]
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap()
        if not descendants(os.getpid()):
            return found
        time.sleep(POLL)
    _signal_all(descendants(os.getpid()), signal.SIGKILL)
    deadline = time.monotonic() + grace
    while descendants(os.getpid()) and time.monotonic() < deadline:
        _reap()
        time.sleep(POLL)
    _reap()
    return found


def run_contained(
    argv: Sequence[str],
    time_limit: float,
    *,
    env: Mapping[str, str] | None = None,
    dump_signal: int | None = signal.SIGUSR1,
    log: TextIO = sys.stderr,
) -> Outcome:
    """Run ``argv``; when it ends or ``time_limit`` seconds pass, stop everything it left running.

    On the time limit, ``dump_signal`` first goes to its Python processes (the test plugin
    registers faulthandler on it, so each prints its threads' stacks), then the whole tree is
    stopped and the outcome says ``timed_out``. SIGINT and SIGTERM to this process are passed on.
    """
    become_subreaper()
    process = subprocess.Popen(list(argv), env=None if env is None else dict(env))
    previous = {
        signum: signal.signal(signum, lambda received, _frame: process.send_signal(received))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    deadline = time.monotonic() + time_limit
    returncode: int | None = None
    timed_out = False
    try:
        while returncode is None:
            # reaps the command and, meanwhile, any orphan that ends, so none stays a zombie
            returncode = _reap().get(process.pid)
            if returncode is None and time.monotonic() > deadline:
                timed_out = True
                log.write(
                    f"\n== {argv[0]} did not finish within {time_limit:.0f} s: stacks, then stopping it\n"
                )
                log.flush()
                if dump_signal is not None:
                    _signal_all([pid for pid in descendants(os.getpid()) if _is_python(pid)], dump_signal)
                    time.sleep(DUMP_GRACE)
                stop_descendants()
                returncode = TIMED_OUT
            elif returncode is None:
                time.sleep(POLL)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    process.returncode = returncode  # reaped here, not by Popen
    leftovers = [] if timed_out else stop_descendants()
    if leftovers:
        log.write(f"== stopped {len(leftovers)} process(es) left running after {argv[0]} ended:\n")
        log.writelines(f"   {line}\n" for line in leftovers)
        log.flush()
    return Outcome(returncode=returncode, timed_out=timed_out, leftovers=leftovers)
