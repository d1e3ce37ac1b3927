"""Running one job task as a local process (or a container) and capturing what it printed.

A task runs in its own process group (``start_new_session``) with exactly the environment it is
given; on timeout the whole group is killed (SIGKILL), so children a script forked die with it.
stdout and stderr are read concurrently; each keeps only its last ``limit`` bytes in memory
(:class:`OutputTail`), and every secret value is masked before the text leaves this module —
also a secret cut in half where the kept tail starts.

The command line for a container (:func:`container_argv`) is a pure function: ``<runtime> run
--rm`` with the working directory mounted at ``/keptn``, each variable passed by name only
(``-e NAME``, the value travels in the runtime's environment, never in its argv), then the
image, then ``cmd`` and ``args`` as separate arguments.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from keptn.secrets import MASK, mask

__all__ = [
    "CONTAINER_MOUNT",
    "OutputTail",
    "ProcessResult",
    "container_argv",
    "find_runtime",
    "mask_output",
    "run_process",
]

CONTAINER_MOUNT = "/keptn"
"""Where a container sees the task's directory (Keptn's job-executor mount point)."""
_READ_CHUNK = 65536

# Runs between fork and the task's program (a preexec_fn is not safe with threads): on Linux the
# task gets SIGKILL when the executor dies, so a killed executor leaves no task running behind
# (its journal then answers the task instead of running it again). argv: parent pid, program, args.
_LAUNCHER = """\
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if hasattr(libc, "prctl"):
    libc.prctl(1, 9, 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    sys.exit("the executor exited before the task started")
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    sys.exit(f"cannot start {sys.argv[2]!r}: {exc.strerror or exc}")
"""


class OutputTail:
    """Keeps the last ``limit`` bytes written to it, and how many bytes came in all.

    Example::

        tail = OutputTail(4)
        tail.write(b"abcdef")
        tail.text(), tail.truncated  # ("cdef", True)
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        self.limit = limit
        self.total = 0
        self._buffer = bytearray()

    def write(self, chunk: bytes) -> None:
        """Add bytes, dropping the oldest beyond the limit."""
        self.total += len(chunk)
        self._buffer += chunk
        if len(self._buffer) > self.limit:
            del self._buffer[: len(self._buffer) - self.limit]

    @property
    def truncated(self) -> bool:
        """Whether bytes were dropped."""
        return self.total > len(self._buffer)

    def text(self) -> str:
        """The kept bytes as text (invalid UTF-8, e.g. a character cut at the start, is replaced)."""
        return self._buffer.decode("utf-8", errors="replace")


def mask_output(text: str, secrets: Iterable[str], *, cut_at_start: bool) -> str:
    """Mask every secret value in ``text``.

    Args:
        text: captured output.
        secrets: the values to hide (empty ones are ignored).
        cut_at_start: the text is the tail of a longer output, so it may begin in the middle of a
            secret; such a leading remainder of a secret is masked too.

    Returns:
        The text with ``***`` where a secret (or, at the start, the end of one) was.
    """
    values = [value for value in secrets if value]
    if cut_at_start:
        # The longest remainder wins: "cret" of "secret" rather than only "t".
        remainders = sorted(
            (value[i:] for value in values for i in range(1, len(value)) if text.startswith(value[i:])),
            key=len,
            reverse=True,
        )
        if remainders:
            text = MASK + text[len(remainders[0]) :]
    return mask(text, values)


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """How one task's process ended, with its masked output."""

    exit_code: int | None
    """The exit status; negative for a signal (Python's convention); None if it never started."""
    timed_out: bool
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    duration_seconds: float


async def _pump(stream: asyncio.StreamReader | None, tail: OutputTail) -> None:
    if stream is None:
        return
    while chunk := await stream.read(_READ_CHUNK):
        tail.write(chunk)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the whole group is gone already


async def run_process(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    time_limit: float,
    limit: int,
    secrets: Iterable[str] = (),
) -> ProcessResult:
    """Run ``argv`` (no shell) in ``cwd`` with exactly ``env``; kill its group after ``time_limit``.

    Args:
        argv: the program and its arguments; ``argv[0]`` is looked up in ``env["PATH"]``.
        cwd: the working directory.
        env: the complete environment of the process.
        time_limit: seconds before the process group is killed.
        limit: bytes of stdout and of stderr kept (the last ones).
        secrets: values masked in the output.

    Returns:
        The result; a program that cannot be started is reported as exit code None with the
        reason in ``stderr`` (never raised), so the task still finishes with a message.
    """
    begun = time.monotonic()
    out, err = OutputTail(limit), OutputTail(limit)
    if "/" not in argv[0] and shutil.which(argv[0], path=env.get("PATH", "")) is None:
        reason = f"cannot start {argv[0]!r}: not found on PATH"
        return ProcessResult(None, False, "", reason, False, False, time.monotonic() - begun)
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid())]
    try:
        proc = await asyncio.create_subprocess_exec(
            *launcher,
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        reason = f"cannot start {argv[0]!r}: {exc.strerror or exc}"
        return ProcessResult(None, False, "", mask(reason, secrets), False, False, time.monotonic() - begun)
    pumps = asyncio.gather(_pump(proc.stdout, out), _pump(proc.stderr, err))
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), time_limit)
    except TimeoutError:
        timed_out = True
        _kill_group(proc.pid)
        await proc.wait()
    except BaseException:
        # Cancelled (the executor is stopping): never leave the task's processes behind.
        _kill_group(proc.pid)
        await proc.wait()
        pumps.cancel()
        raise
    finally:
        # A grandchild may still hold the pipes open after the main process exited: kill the group.
        if proc.returncode is not None:
            _kill_group(proc.pid)
    try:
        await asyncio.wait_for(pumps, 5.0)
    except TimeoutError:
        pass  # output of a process that escaped its group; what was read is kept
    secret_values = list(secrets)
    return ProcessResult(
        exit_code=proc.returncode,
        timed_out=timed_out,
        stdout=mask_output(out.text(), secret_values, cut_at_start=out.truncated),
        stderr=mask_output(err.text(), secret_values, cut_at_start=err.truncated),
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
        duration_seconds=time.monotonic() - begun,
    )


def find_runtime(preferred: str | None = None, *, path: str | None = None) -> str | None:
    """The container runtime to use: ``preferred`` if given, else ``podman``, else ``docker``.

    Returns:
        The executable's full path, or None when none is installed.
    """
    for name in (preferred,) if preferred else ("podman", "docker"):
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def container_argv(
    runtime: str,
    *,
    image: str,
    cmd: Sequence[str],
    args: Sequence[str],
    env_names: Iterable[str],
    host_dir: str,
    working_dir: str,
    name: str,
) -> list[str]:
    """The command line that runs a task in a container (docker and podman take the same one).

    Args:
        runtime: the runtime's executable.
        image: the image.
        cmd: the entrypoint and its first arguments (the task's ``cmd``).
        args: the task's ``args``.
        env_names: variables passed through by name; their values must be in the runtime's own
            environment (so they never appear in a process list).
        host_dir: the task's directory, mounted read-write at ``/keptn``.
        working_dir: the directory inside the container (absolute).
        name: the container's name (lets a timeout stop it by name).

    Returns:
        The argv list.
    """
    argv = [runtime, "run", "--rm", "--name", name, "--network", "host"]
    argv += ["--volume", f"{host_dir}:{CONTAINER_MOUNT}", "--workdir", working_dir]
    for env_name in sorted(set(env_names)):
        argv += ["--env", env_name]
    argv += ["--entrypoint", cmd[0], image, *cmd[1:], *args]
    return argv
