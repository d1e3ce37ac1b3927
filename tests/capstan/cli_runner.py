"""Run the ``capstan`` command as a real process, the way a user's shell or CI pipeline does."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CAPSTAN = str(Path(sys.executable).parent / "capstan")
"""The installed console script of this virtualenv."""


@dataclass
class Run:
    """How one ``capstan`` process ended."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as JSON (for ``--output json``)."""
        return json.loads(self.stdout)


async def run_capstan(
    *args: str,
    api_url: str | None = None,
    token: str | None = None,
    stdin: bytes | None = None,
    within: float = 60,
    **env: str,
) -> Run:
    """Run ``capstan <args>`` with a clean ``CAPSTAN_*`` environment and stdin not a terminal.

    Args:
        args: the command line after ``capstan``.
        api_url: sets ``CAPSTAN_API_URL``.
        token: sets ``CAPSTAN_API_TOKEN``.
        stdin: bytes to feed on stdin (default: none, /dev/null).
        within: seconds before the test fails.
        env: further environment variables (e.g. ``HOME`` or ``XDG_CONFIG_HOME`` for ``capstan auth``).
    """
    environ = {key: value for key, value in os.environ.items() if not key.startswith("CAPSTAN_")}
    environ.pop("COLUMNS", None)
    environ.update(USER="tester", **env)
    if api_url is not None:
        environ["CAPSTAN_API_URL"] = api_url
    if token is not None:
        environ["CAPSTAN_API_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        CAPSTAN,
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), within)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def one_error_line(run: Run, code: int = 1) -> str:
    """The stderr of a failed run: exactly one line starting ``error:``, no traceback."""
    assert run.code == code, (run.code, run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: "), run.stderr
    return lines[0]


def cli_env(base_url: str, token: str, tmp_path: Path) -> dict[str, str]:
    """The environment of ``capstan`` runs against a served stack, with HOME and the ``capstan auth``
    config kept under ``tmp_path`` (a developer's own stored credentials must not leak in)."""
    return {
        "CAPSTAN_API_URL": f"{base_url}/api",
        "CAPSTAN_API_TOKEN": token,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "HOME": str(tmp_path / "home"),
    }
