"""Helpers for the capstan tests: blocks of free ports and processes left behind."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

import pytest

from capstan.ports import is_port_free


def processes_mentioning(text: str) -> list[str]:
    """Live processes whose command line or environment contains ``text``, as "pid: cmdline".

    The environment counts because the worker and the gateway get the data dir only through
    ``CAPSTAN_DATA_DIR``; postgres and temporal have it on their command line.
    """
    found = []
    needle = text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if state != "Z" and (needle in cmdline or needle in environ):
            readable = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {readable}")
    return found


def free_temporal_port() -> int:
    """A port P with P, P+10 and P+11 free (the dev server's gRPC, HTTP and metrics ports).

    Below the kernel's ephemeral range (32768+), so no randomly bound port collides with it.
    """
    for _ in range(200):
        port = random.randint(20000, 32000)
        if all(is_port_free("127.0.0.1", p) for p in (port, port + 10, port + 11)):
            return port
    raise RuntimeError("no free port block found")


def free_port() -> int:
    """A free loopback port below the ephemeral range."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        if is_port_free("127.0.0.1", port):
            return port
    raise RuntimeError("no free port found")


@pytest.fixture
def listening_socket():
    """A socket listening on a free loopback port: the port is in use while the test runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()
