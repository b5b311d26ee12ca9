"""Slowing down key guessing: wrong API keys and wrong console logins, counted per client
address.

Each failure is remembered for `window`; an address with `limit` failures in the window is
answered 429 (with `Retry-After`: when its oldest failure ages out) before its key is even
looked up, right key or not. Other addresses are not affected, so an attacker cannot lock
the right key out from elsewhere. The count lives in the process (one per API process): a
deployment with several processes allows each its own `limit`.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_ADDRESSES = 10_000
"""Addresses remembered at once; past this the longest quiet one is forgotten first."""


class FailureLimiter:
    def __init__(
        self, *, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again; None when it may now."""
        now = self._clock()
        failures = self._recent(address, now)
        if failures is None or len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, address: str) -> None:
        now = self._clock()
        failures = self._recent(address, now) or deque()
        failures.append(now)
        self._failures[address] = failures
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)


def client_address(host: str | None) -> str:
    return host or "unknown"
