"""Container health check of a worker: ``python -m worker.health`` exits 0 when it polls.

A worker in a container is healthy when Temporal lists a poller on the task queue whose identity
(``<pid>@<hostname>``, the SDK default) carries this container's hostname.
"""

from __future__ import annotations

import asyncio
import socket
import sys

from capstan.settings import Settings
from capstan.temporal import connect_temporal, task_queue_pollers


async def is_polling(settings: Settings, hostname: str) -> bool:
    """Whether a worker on ``hostname`` polls the configured task queue."""
    client = await connect_temporal(settings)
    pollers = await task_queue_pollers(client, settings.temporal_namespace, settings.temporal_task_queue)
    return any(identity.endswith(f"@{hostname}") for identity in pollers)


def main() -> int:
    """Exit code 0 when healthy, 1 otherwise (with the reason on stderr)."""
    try:
        healthy = asyncio.run(asyncio.wait_for(is_polling(Settings(), socket.gethostname()), 10))
    except Exception as exc:  # any failure to find out means "unhealthy"
        sys.stderr.write(f"unhealthy: {type(exc).__name__}: {exc}\n")
        return 1
    if not healthy:
        sys.stderr.write("unhealthy: no poller from this host on the task queue\n")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
