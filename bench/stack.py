"""The embedded stack under test: ``python -m capstan up`` on free loopback ports and a temp data dir.

:func:`running_stack` starts it, waits for its ready line, and stops it again (SIGTERM, then the
pids of whatever still mentions the temp data dir, then ``pg_ctl stop``), whatever happened in
between, and removes the data dir. :class:`Sampler` watches the RSS of its processes, and
:func:`cpu_seconds` reads their CPU time, so each phase can report what it cost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from capstan.ports import is_port_free

ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"Capstan is up \((cold|warm) start in ([\d.]+) s\)")
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
ROLES = ("gateway", "worker", "temporal")
"""The stack's processes whose peak RSS is reported."""

log = logging.getLogger("bench.stack")


class StackError(RuntimeError):
    """``capstan up`` did not start, or died."""


def _free_port(*offsets: int) -> int:
    # Below the kernel's ephemeral range, so no randomly bound port collides with it.
    for _ in range(500):
        port = random.randint(20000, 32000)
        if all(is_port_free("127.0.0.1", port + offset) for offset in (0, *offsets)):
            return port
    raise StackError("no free loopback port found")


@dataclass
class Stack:
    """A running ``capstan up`` and what it printed."""

    proc: subprocess.Popen[str]
    data_dir: Path
    api_port: int
    temporal_port: int
    ui_port: int
    token: str
    output: list[str] = field(default_factory=list)
    ready_line: str = ""

    @property
    def api_url(self) -> str:
        """The Keptn API base URL."""
        return f"http://127.0.0.1:{self.api_port}/api"

    @property
    def temporal_target(self) -> str:
        """``host:port`` of the dev server's frontend."""
        return f"127.0.0.1:{self.temporal_port}"

    def processes(self) -> dict[str, psutil.Process]:
        """The stack's processes by role: ``gateway``, ``worker``, ``temporal``, ``postgres``."""
        found: dict[str, psutil.Process] = {}
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            try:
                argv = child.cmdline()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if argv[1:3] == ["-m", "worker"]:
                found["worker"] = child
            elif argv[1:3] == ["-m", "api"]:
                found["gateway"] = child
            elif "start-dev" in argv:
                found["temporal"] = child
        postmaster = self._postmaster()
        if postmaster is not None:
            found["postgres"] = postmaster
        return found

    def _postmaster(self) -> psutil.Process | None:
        try:
            pid = int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
            return psutil.Process(pid)
        except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
            return None

    def database_url(self) -> str:
        """The URL the worker uses for the embedded PostgreSQL (read from its environment)."""
        worker = self.processes().get("worker")
        if worker is None:
            raise StackError("the worker process is not running")
        url: str = worker.environ()["CAPSTAN_DATABASE_URL"]
        return url

    def logs_tail(self, lines: int = 20) -> str:
        """The last lines of every log in the data dir, for error reports."""
        parts = []
        for path in sorted((self.data_dir / "logs").glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name} ---\n" + "\n".join(tail))
        return "\n".join(parts)


def _pump(stack: Stack, ready: threading.Event) -> None:
    assert stack.proc.stdout is not None
    for line in stack.proc.stdout:
        stack.output.append(line)
        if READY.search(line):
            stack.ready_line = line.strip()
            ready.set()
    ready.set()  # the process ended: wake the waiter


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSTAN_") and k != "XDG_RUNTIME_DIR"}
    env["PYTHONPATH"] = str(ROOT)
    return env


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    """Start ``capstan up`` on a fresh temp data dir and free ports; stop it and clean up on exit.

    Raises:
        StackError: it did not become ready within :data:`START_TIMEOUT_S`.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="capstan-bench-"))
    # As root, PostgreSQL runs as another user, who must be able to enter the data dir.
    data_dir.chmod(0o755)
    api_port, ui_port, temporal_port = _free_port(), _free_port(), _free_port(10, 11)
    token = secrets.token_urlsafe(24)
    argv = [
        sys.executable, "-m", "capstan", "up",
        "--data-dir", str(data_dir),
        "--api-port", str(api_port),
        "--temporal-port", str(temporal_port),
        "--temporal-ui-port", str(ui_port),
        "--api-token", token,
    ]  # fmt: skip
    log.info("starting capstan up (data dir %s)", data_dir)
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    stack = Stack(proc, data_dir, api_port, temporal_port, ui_port, token)
    ready = threading.Event()
    pump = threading.Thread(target=_pump, args=(stack, ready), daemon=True)
    pump.start()
    try:
        if not ready.wait(START_TIMEOUT_S) or not stack.ready_line:
            raise StackError(
                f"capstan up did not become ready:\n{''.join(stack.output)}\n{stack.logs_tail()}"
            )
        log.info("%s", stack.ready_line)
        yield stack
    finally:
        _stop(stack)
        pump.join(10)
        shutil.rmtree(data_dir, ignore_errors=True)


def _stop(stack: Stack) -> None:
    proc = stack.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(STOP_TIMEOUT_S)
        log.info("capstan up stopped (exit code %s)", code)
    except subprocess.TimeoutExpired:
        log.warning("capstan up did not stop within %.0f s; killing it", STOP_TIMEOUT_S)
        proc.kill()
        proc.wait()
    # Whatever is left mentions our unique data dir: those are processes this run started.
    deadline = time.monotonic() + 5
    while (left := _processes_mentioning(str(stack.data_dir))) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        log.warning("killing left-over process %d", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    from store.embedded import EmbeddedPostgres

    EmbeddedPostgres(stack.data_dir).stop()


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["pid"] == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            mentions = text in " ".join(proc.info["cmdline"] or []) or text in str(proc.environ())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if mentions:
            found.append(int(proc.info["pid"]))
    return found


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each stack process and by this benchmark.

    PostgreSQL counts its postmaster, its live backends and the backends it has reaped.
    """
    used: dict[str, float] = {}
    for role, proc in stack.processes().items():
        try:
            times = proc.cpu_times()
            total = times.user + times.system
            if role == "postgres":
                total += times.children_user + times.children_system
                for child in proc.children(recursive=True):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child_times = child.cpu_times()
                        total += child_times.user + child_times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        used[role] = total
    own = psutil.Process().cpu_times()
    used["bench"] = own.user + own.system
    return used


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per process between two :func:`cpu_seconds` readings."""
    return {role: round(after[role] - before.get(role, 0.0), 2) for role in after}


class Sampler:
    """Samples the RSS of the stack's gateway, worker and Temporal (and this process) in a thread.

    Args:
        stack: the running stack.
        interval: seconds between samples.
    """

    def __init__(self, stack: Stack, interval: float = 0.25) -> None:
        self._stack = stack
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak_mb: dict[str, float] = {}
        self.first_mb: dict[str, float] = {}

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        own = psutil.Process()
        while True:
            processes = {r: p for r, p in self._stack.processes().items() if r in ROLES}
            processes["bench"] = own
            for role, proc in processes.items():
                try:
                    mb = proc.memory_info().rss / 2**20
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                self.first_mb.setdefault(role, round(mb, 1))
                self.peak_mb[role] = round(max(mb, self.peak_mb.get(role, 0.0)), 1)
            if self._stop.wait(self._interval):
                return
