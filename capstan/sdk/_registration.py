"""Registration with the control plane, the heartbeat, and the subscriptions it sends back.

go-utils registers once and gives up on failure; this loop never gives up, so an integration
started before the control plane (or across its restart) connects when it can:

1. ``POST /controlPlane/v1/uniform/registration`` until it succeeds, with backoff;
2. then every ``heartbeat_interval`` ``PUT …/registration/{id}/ping``, starting at once; the
   answer's ``subscriptions`` replace the current ones (edits made in the UI arrive this way);
3. a ping answered 404 (the control plane forgot the integration, e.g. after its TTL) goes back
   to step 1. Other ping failures are logged and the heartbeat continues.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ._client import Backoff, ControlPlaneClient, ControlPlaneError
from ._subscriptions import Subscription, SubscriptionBook

__all__ = ["Registrar"]

_log = logging.getLogger("capstan.sdk")


class Registrar:
    """Keeps the integration registered and its subscriptions current.

    Args:
        client: the control plane client.
        registration: returns the registration body (called before every attempt).
        book: receives the subscriptions of every successful ping.
        heartbeat_interval: seconds between pings.
        backoff: waits between failed registrations (attempts are unlimited).
    """

    def __init__(
        self,
        client: ControlPlaneClient,
        registration: Callable[[], Mapping[str, Any]],
        book: SubscriptionBook,
        *,
        heartbeat_interval: float,
        backoff: Backoff,
    ) -> None:
        self._client = client
        self._registration = registration
        self._book = book
        self._interval = heartbeat_interval
        self._backoff = backoff
        self.integration_id: str | None = None
        self.registered = asyncio.Event()

    async def run(self) -> None:
        """Register, then keep the heartbeat going, until cancelled."""
        while True:
            if self.integration_id is None:
                await self._register()
            if await self._ping():
                await asyncio.sleep(self._interval)

    async def _register(self) -> None:
        failures = 0
        while True:
            body = self._registration()
            try:
                self.integration_id = await self._client.register(body)
            except ControlPlaneError as exc:
                failures += 1
                delay = self._backoff.delay(failures)
                level = logging.WARNING if failures == 1 or failures % 10 == 0 else logging.DEBUG
                _log.log(
                    level, "registration failed (%d), retrying in %.1f s: %s", failures, delay, exc.message
                )
                await asyncio.sleep(delay)
                continue
            _log.info(
                "registered %s as %s",
                body.get("name"),
                self.integration_id,
                extra={"integration_id": self.integration_id},
            )
            self.registered.set()
            return

    async def _ping(self) -> bool:
        """Send one heartbeat; False when the integration must register again."""
        assert self.integration_id is not None
        try:
            answer = await self._client.ping(self.integration_id)
        except ControlPlaneError as exc:
            _log.warning("heartbeat failed: %s", exc.message)
            return True
        if answer is None:
            _log.warning(
                "the control plane no longer knows integration %s; registering again", self.integration_id
            )
            self.integration_id = None
            self.registered.clear()
            return False
        self._refresh(answer)
        return True

    def _refresh(self, answer: Mapping[str, Any]) -> None:
        raw = answer.get("subscriptions")
        if not isinstance(raw, list):
            return
        subscriptions: list[Subscription] = []
        for item in raw:
            try:
                subscriptions.append(Subscription.from_json(item))
            except ValueError as exc:
                _log.warning("ignoring a subscription the control plane sent: %s", exc)
        if self._book.replace(subscriptions):
            _log.info(
                "subscriptions updated: %s", ", ".join(sorted({sub.event for sub in subscriptions})) or "none"
            )
