"""A worker's health: the container check ``python -m worker.health``, and its metrics server.

A worker in a container is healthy when Temporal lists a poller on the task queue whose identity
(``<pid>@<hostname>``, the SDK default) carries this container's hostname: ``python -m
worker.health`` exits 0 then.

With ``CAPSTAN_WORKER_METRICS_PORT`` set, the worker also serves ``GET /metrics`` (Prometheus) and
``GET /healthz`` (200 while the process runs) from a small thread, see :class:`MetricsServer`.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from capstan import metrics
from capstan.settings import Settings
from capstan.temporal import connect_temporal, task_queue_pollers


class MetricsServer:
    """``/metrics`` and ``/healthz`` of a worker, served from a daemon thread.

    A thread rather than the event loop: a scrape then answers even while the loop is busy, and
    the exposition reads only in-process counters, which the client library makes thread-safe.

    Args:
        settings: ``worker_metrics_host``/``worker_metrics_port`` (0: any free port) and
            ``metrics_token``.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (after :meth:`start`)."""
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Listen and serve in the background."""
        settings = self._settings

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._answer(200, b"ok\n", "text/plain; charset=utf-8")
                elif self.path != "/metrics":
                    self._answer(404, b"not found\n", "text/plain; charset=utf-8")
                elif not metrics.metrics_authorized(settings, self.headers.get("authorization")):
                    self._answer(401, b"missing or wrong bearer token\n", "text/plain; charset=utf-8")
                else:
                    self._answer(200, metrics.render(), metrics.CONTENT_TYPE)

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # a scrape every few seconds is not worth a log line

        port = settings.worker_metrics_port or 0
        self._server = ThreadingHTTPServer((settings.worker_metrics_host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()


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
