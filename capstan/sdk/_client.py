"""HTTP calls to the control plane: send events, register, ping, list open ``.triggered`` events.

Every call carries the API token in ``x-token``. Sending an event is retried with exponential
backoff on connection errors, timeouts, 429 and 5xx (honouring ``Retry-After``); the event keeps
its id across attempts, and the gateway stores an event id once, so a retry cannot duplicate it.
Any other 4xx is final: retrying a rejected event would be rejected again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Backoff", "ControlPlaneClient", "ControlPlaneError"]

_log = logging.getLogger("capstan.sdk")

USER_AGENT = "capstan-sdk/0.1.0"
MAX_PAGES = 1000
"""Upper bound of pages followed in one listing, in case a server repeats ``nextPageKey``."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff between attempts, with ±20 % jitter.

    Example::

        Integration("helm-service", backoff=Backoff(initial=1.0, maximum=60.0, attempts=20))

    Attributes:
        initial: seconds before the second attempt. Default 0.5 s.
        maximum: longest wait between two attempts. Default 30 s.
        multiplier: growth of the wait per attempt. Default 2.
        attempts: how often an event is sent before giving up (registration retries forever).
            Default 10, about 2 minutes in all.
    """

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    attempts: int = 10

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.multiplier < 1 or self.attempts < 1:
            raise ValueError(f"invalid backoff {self!r}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failure (1-based)."""
        base = min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1))
        return base * random.uniform(0.8, 1.2)


class ControlPlaneError(Exception):
    """The control plane rejected a call, or could not be reached.

    Attributes:
        message: what went wrong.
        status_code: the HTTP status, or None if no response arrived.
        retryable: whether trying again later may succeed (no response, 429 or 5xx).
        retry_after: the seconds the server asked to wait (``Retry-After``), if it did.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.retryable = status_code is None or status_code == 429 or status_code >= 500


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])
    return response.text[:200]


class ControlPlaneClient:
    """A small client of the Keptn-compatible API under ``api_url`` (e.g. ``http://host/api``).

    Args:
        api_url: the API's base URL, ending in ``/api``.
        token: the API token.
        backoff: retry policy of :meth:`send_event`.
        timeout: seconds per HTTP request.
        transport: an httpx transport (e.g. ``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        backoff: Backoff,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.backoff = backoff
        self._http = httpx.AsyncClient(
            base_url=api_url.rstrip("/") + "/",
            headers={"x-token": token, "user-agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise ControlPlaneError(f"{method} {path}: {reason}") from exc
        if response.status_code >= 400:
            raise ControlPlaneError(
                f"{method} {path}: HTTP {response.status_code}: {_describe(response)}",
                status_code=response.status_code,
                retry_after=_retry_after(response),
            )
        return response

    async def send_event(self, event: Mapping[str, Any], *, retry: bool = True) -> None:
        """POST an event to ``/v1/event``, retrying transient failures with the same event.

        Args:
            event: the complete event (with its ``id``).
            retry: False to make a single attempt.

        Raises:
            ControlPlaneError: the control plane rejected it (4xx) or the attempts ran out.
        """
        attempts = self.backoff.attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                await self._call("POST", "v1/event", json=event)
                return
            except ControlPlaneError as exc:
                if not exc.retryable or attempt == attempts:
                    raise
                delay = self.backoff.delay(attempt)
                if exc.retry_after is not None:
                    delay = min(self.backoff.maximum, exc.retry_after)
                _log.warning(
                    "sending %s %s failed (attempt %d of %d), retrying in %.1f s: %s",
                    event.get("type"),
                    event.get("id"),
                    attempt,
                    attempts,
                    delay,
                    exc.message,
                    extra={"event_id": event.get("id"), "event_type": event.get("type")},
                )
                await asyncio.sleep(delay)

    async def register(self, integration: Mapping[str, Any]) -> str:
        """POST the integration to ``/controlPlane/v1/uniform/registration``; return its id.

        Raises:
            ControlPlaneError: the call failed or the answer carries no id.
        """
        response = await self._call("POST", "controlPlane/v1/uniform/registration", json=integration)
        body = _json_object(response)
        integration_id = body.get("id")
        if not isinstance(integration_id, str) or not integration_id:
            raise ControlPlaneError(f"registration answer without an id: {response.text[:200]}")
        return integration_id

    async def ping(self, integration_id: str) -> Mapping[str, Any] | None:
        """PUT the heartbeat; return the integration as the control plane knows it.

        Returns:
            The integration object (with its current ``subscriptions``), or None if the control
            plane does not know the id any more (HTTP 404: it expired and must register again).

        Raises:
            ControlPlaneError: any other failure.
        """
        try:
            response = await self._call("PUT", f"controlPlane/v1/uniform/registration/{integration_id}/ping")
        except ControlPlaneError as exc:
            if exc.status_code == 404:
                return None
            raise
        return _json_object(response)

    async def open_triggered_events(self, event_type: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """List the open ``.triggered`` events of a type, following ``nextPageKey``.

        Args:
            event_type: e.g. ``sh.keptn.event.deployment.triggered``.
            params: ``project``/``stage``/``service`` filters.

        Returns:
            The events of every page.

        Raises:
            ControlPlaneError: a page could not be read.
        """
        path = f"controlPlane/v1/event/triggered/{event_type}"
        events: list[dict[str, Any]] = []
        query = dict(params)
        seen_keys: set[str] = set()
        for _ in range(MAX_PAGES):
            body = _json_object(await self._call("GET", path, params=query))
            page = body.get("events") or []
            if not isinstance(page, list):
                raise ControlPlaneError(f"GET {path}: 'events' is not a list")
            events.extend(item for item in page if isinstance(item, dict))
            next_key = body.get("nextPageKey")
            # Keptn answers "0" (or nothing) on the last page.
            if next_key in (None, "", "0", 0) or str(next_key) in seen_keys:
                break
            seen_keys.add(str(next_key))
            query["nextPageKey"] = str(next_key)
        return events


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ControlPlaneError(
            f"{response.request.method} {response.request.url.path}: the answer is not JSON"
        ) from None
    if not isinstance(body, dict):
        raise ControlPlaneError(
            f"{response.request.method} {response.request.url.path}: the answer is not a JSON object"
        )
    return body
