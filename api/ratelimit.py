"""Rate limiting of failed authentication, per client address, in the gateway's memory.

Guessing a token needs many attempts; after ``limit`` failed ones within a minute an address is
answered 429 (with ``Retry-After``) on every authenticated route, *without* the token being
checked, until the oldest failure of the window is a minute old. Checking the token while blocked
would let a guesser tell a hit (200) from a miss (429) at full speed.

The state is per gateway process and lost on restart, which is enough against online guessing.
Only the address the connection comes from counts: ``X-Forwarded-For`` is not trusted, since any
client can send it; clients behind one proxy (or all local clients on ``127.0.0.1``) share a budget.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0
MAX_TRACKED_ADDRESSES = 10_000
"""Memory bound: beyond this many addresses with recent failures the stalest one is forgotten."""


class AuthFailureLimiter:
    """Counts failed authentications per address over a sliding one-minute window.

    Args:
        limit: failures one address may have within a minute; the next request is refused.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        found = self._failures.get(address)
        if found is None:
            return None
        while found and found[0] <= now - WINDOW_SECONDS:
            found.popleft()
        if not found:
            del self._failures[address]
            return None
        return found

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again, or None if it is not blocked."""
        now = self.clock()
        found = self._recent(address, now)
        if found is None or len(found) < self.limit:
            return None
        # Once the oldest failure leaves the window, one more attempt is allowed.
        return max(1, math.ceil(found[0] + WINDOW_SECONDS - now))

    def record_failure(self, address: str) -> None:
        """Count one failed authentication of ``address``."""
        now = self.clock()
        found = self._recent(address, now)
        if found is None:
            found = self._failures[address] = deque()
        found.append(now)
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_TRACKED_ADDRESSES:
            self._failures.popitem(last=False)
