"""Child processes of ``capstan up``: started so that they cannot outlive it, stopped in steps.

Each child runs in its own session, so a Ctrl-C in the terminal reaches only ``capstan up``, which
then stops the children in order. On Linux each child also gets ``PR_SET_PDEATHSIG`` = SIGTERM,
so it is told to stop even when ``capstan up`` itself is SIGKILLed and can run no clean-up.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from keptn.errors import KeptnError

# Runs between fork and the real program: prctl must be called in the child, and a preexec_fn
# is not safe in a process that already has threads (the Temporal client's runtime has some).
# The death signal survives execv. If the parent died before prctl took effect, nobody would
# ever send it, so the launcher checks that its parent is still the one that started it.
_LAUNCHER = """\
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if hasattr(libc, "prctl") and libc.prctl(1, 15, 0, 0, 0) != 0:
    sys.exit("capstan launcher: prctl(PR_SET_PDEATHSIG) failed")
if os.getppid() != int(sys.argv[1]):
    sys.exit("capstan launcher: the parent exited before the child started")
os.execv(sys.argv[2], sys.argv[2:])
"""


class ChildDiedError(KeptnError):
    """A child of ``capstan up`` exited while it should have been running.

    Args:
        name: the child's name (``temporal``, ``worker``, ``gateway``, ``postgres``).
        log_file: where its output went.
        returncode: its exit status, if known.
    """

    def __init__(self, name: str, log_file: Path, returncode: int | None) -> None:
        status = f" with exit code {returncode}" if returncode is not None else ""
        super().__init__(f"{name} exited unexpectedly{status}; see {log_file}")
        self.name = name
        self.log_file = log_file
        self.returncode = returncode


class ChildProcess:
    """One started child: its process, name and log file.

    Args:
        name: a short name used in messages and as the log file's stem.
        proc: the started process.
        log_file: the file its stdout and stderr are appended to.
    """

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log_file: Path) -> None:
        self.name = name
        self.proc = proc
        self.log_file = log_file

    @classmethod
    def spawn(cls, name: str, argv: Sequence[str], *, env: Mapping[str, str], log_dir: Path) -> ChildProcess:
        """Start ``argv`` (``argv[0]`` an absolute path) with its output appended to ``<log_dir>/<name>.log``.

        Must be called from the main thread: the death signal fires when the *thread* that
        started the child ends, not the process.
        """
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"{name}.log"
        with log_file.open("ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            log.write(f"--- capstan up started {name} at {stamp} ---\n".encode())
            log.flush()
            command = list(argv)
            if sys.platform == "linux":
                command = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), *argv]
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )
        return cls(name, proc, log_file)

    @property
    def pid(self) -> int:
        """The child's pid (also its process group and session id)."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the child is still running."""
        return self.proc.poll() is None

    def raise_if_dead(self) -> None:
        """Raise :class:`ChildDiedError` if the child has exited."""
        if not self.alive():
            raise ChildDiedError(self.name, self.log_file, self.proc.returncode)

    async def stop(self, grace: float) -> None:
        """SIGTERM the child's process group, wait up to ``grace`` seconds, then SIGKILL it."""
        self._signal_group(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.proc.wait, grace)
        except subprocess.TimeoutExpired:
            pass
        # Also when the leader exited by itself: anything it left in its group goes too.
        self._signal_group(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait)

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone already
