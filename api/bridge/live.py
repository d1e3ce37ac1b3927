"""Live Bridge pages: server-sent events that push a freshly rendered fragment when the data changed.

A stream polls a cheap fingerprint of what the fragment shows about every half second and renders
only when it changed. Each pushed message carries the fingerprint as its SSE ``id``; a reconnecting
browser sends it back as ``Last-Event-ID`` (the page passes the fingerprint it was rendered with as
``?v=``), so a reconnect pushes nothing unless something changed meanwhile — a push replaces the
fragment and would fold open payload views. A stream ends after :data:`MAX_STREAM_SECONDS` (the
browser reconnects by itself) so that it never holds a server's graceful shutdown for long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Request
from fastapi.responses import StreamingResponse

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
MAX_STREAM_SECONDS = 120.0


def sse_message(event: str, html: str, event_id: str | None = None) -> str:
    """One server-sent event: its name, optional id, and the HTML as ``data:`` lines."""
    lines = [f"event: {event}"]
    if event_id:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in html.splitlines() or [""])
    return "\n".join(lines) + "\n\n"


async def _changes(
    request: Request,
    event: str,
    fingerprint: Callable[[], Awaitable[str]],
    render: Callable[[], Awaitable[str]],
    seen: str | None,
) -> AsyncIterator[str]:
    started = last_sent = time.monotonic()
    yield ": connected\n\n"  # lets the client see the stream is open before anything changes
    while time.monotonic() - started < MAX_STREAM_SECONDS:
        if await request.is_disconnected():
            return
        current = await fingerprint()
        if current != seen:
            # The fingerprint is read before rendering: a change during the render is pushed next time.
            yield sse_message(event, await render(), current)
            seen, last_sent = current, time.monotonic()
        elif time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)


def sse_response(
    request: Request,
    event: str,
    fingerprint: Callable[[], Awaitable[str]],
    render: Callable[[], Awaitable[str]],
    since: str | None = None,
) -> StreamingResponse:
    """Stream ``render()`` as SSE ``event`` whenever ``fingerprint()`` changes.

    Args:
        request: the streaming request (its disconnect ends the stream).
        event: the SSE event name the page's ``sse-swap`` listens to.
        fingerprint: a cheap summary of what the fragment shows.
        render: the fragment's HTML.
        since: the fingerprint the client already shows (``Last-Event-ID`` wins over it).
    """
    seen = request.headers.get("last-event-id") or since
    return StreamingResponse(
        _changes(request, event, fingerprint, render, seen),
        media_type="text/event-stream",
        # no-transform/X-Accel-Buffering: proxies must pass each message on at once.
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )
