"""Checking, before anything starts, that the ports ``capstan up`` will bind are free."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from keptn.errors import ConflictError


class PortInUseError(ConflictError):
    """A port ``capstan up`` needs is taken by another process or by another of its own settings.

    Args:
        port: the port number.
        setting: what the port is configured by, e.g. ``CAPSTAN_API_PORT``.
        message: the full message; derived from the other two when omitted.
    """

    def __init__(self, port: int, setting: str, message: str | None = None) -> None:
        super().__init__(message or f"port {port} ({setting}) is already in use", field=setting)
        self.port = port
        self.setting = setting


@dataclass(frozen=True)
class PortClaim:
    """A port a process will listen on.

    Attributes:
        port: the TCP port.
        setting: the setting it comes from, named the way a user sets it (``CAPSTAN_API_PORT``).
        host: the address it will be bound to.
    """

    port: int
    setting: str
    host: str = "127.0.0.1"


def is_port_free(host: str, port: int) -> bool:
    """Whether a TCP listener could bind ``host:port`` now.

    ``SO_REUSEADDR`` is set like the servers themselves do, so a port whose last connection lingers
    in TIME_WAIT (e.g. right after a previous ``capstan up`` stopped) counts as free.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def check_ports_free(claims: Iterable[PortClaim]) -> None:
    """Raise if two claims share a port or any claimed port is taken.

    Args:
        claims: the ports about to be bound, in the order they should be reported.

    Raises:
        PortInUseError: naming the first port that is in use or claimed twice.
    """
    seen: dict[int, PortClaim] = {}
    for claim in claims:
        if claim.port in seen:
            other = seen[claim.port]
            raise PortInUseError(
                claim.port,
                claim.setting,
                f"port {claim.port} is configured twice: by {other.setting} and by {claim.setting}",
            )
        seen[claim.port] = claim
        try:
            free = is_port_free(claim.host, claim.port)
        except OSError as exc:  # e.g. a port below 1024 without privileges, or an unknown host
            message = f"port {claim.port} ({claim.setting}) cannot be bound on {claim.host}: {exc.strerror}"
            raise PortInUseError(claim.port, claim.setting, message) from exc
        if not free:
            raise PortInUseError(claim.port, claim.setting)
