"""Pull mode: poll the control plane for open ``.triggered`` events (remote execution plane).

Every ``interval`` seconds, for each current subscription that has a handler, the poller calls
``GET /controlPlane/v1/event/triggered/{type}`` with the subscription's single-valued filters
(as go-utils' HTTP event source does), follows ``nextPageKey``, and offers each event that
matches the subscription's whole filter to the dispatcher, which takes each id once. When all
handler slots are busy it stops offering until the next poll, leaving the rest of the events
open for another replica or a later poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from ._client import ControlPlaneClient, ControlPlaneError
from ._dispatch import Dispatcher, Outcome
from ._subscriptions import SubscriptionBook

__all__ = ["Poller"]

_log = logging.getLogger("capstan.sdk")


class Poller:
    """Polls for open ``.triggered`` events and hands them to the dispatcher.

    Args:
        client: the control plane client.
        book: the current subscriptions.
        dispatcher: takes the events.
        event_types: the ``.triggered`` types that have a handler; others are not polled.
        interval: seconds between polls (Keptn's SDK: 1 s).
    """

    def __init__(
        self,
        client: ControlPlaneClient,
        book: SubscriptionBook,
        dispatcher: Dispatcher,
        *,
        event_types: Collection[str],
        interval: float,
    ) -> None:
        self._client = client
        self._book = book
        self._dispatcher = dispatcher
        self._event_types = frozenset(event_types)
        self._interval = interval
        self._failing = False

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await self.poll_once()
            await asyncio.sleep(self._interval)

    async def poll_once(self) -> int:
        """Poll every subscription once; return how many events were accepted."""
        accepted = 0
        for subscription in self._book.current:
            if subscription.event not in self._event_types or not subscription.pollable:
                continue
            if not self._dispatcher.has_capacity():
                break
            try:
                events = await self._client.open_triggered_events(
                    subscription.event, subscription.query_params()
                )
            except ControlPlaneError as exc:
                # Log the first failure of a streak loudly, the repeats quietly (1 poll a second).
                _log.log(
                    logging.DEBUG if self._failing else logging.WARNING, "polling failed: %s", exc.message
                )
                self._failing = True
                continue
            if self._failing:
                _log.info("polling works again")
                self._failing = False
            for event in events:
                if not subscription.matches(event):
                    continue
                outcome = self._dispatcher.offer(event, subscription=subscription, wait=False)
                if outcome is Outcome.ACCEPTED:
                    accepted += 1
                elif outcome is Outcome.BUSY:
                    break
        return accepted
