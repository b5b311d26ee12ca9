"""Heartbeats for activities that may take a while (sending an email, building documents).

An activity that heartbeats is known to be alive: if its worker dies, Temporal notices when
the heartbeat stops (the call's `heartbeat_timeout`, seconds) and retries it on another
worker, instead of waiting for the whole `start_to_close_timeout` to pass."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

HEARTBEAT_EVERY_SECONDS = 3.0
"""Well inside the shortest `heartbeat_timeout` the workflows set (`workflows/case.py`)."""


@contextlib.asynccontextmanager
async def heartbeating(every: float = HEARTBEAT_EVERY_SECONDS) -> AsyncIterator[None]:
    """Heartbeat now and every `every` seconds while the body runs (blocking work in the body
    must go to a thread, as it does here, or the event loop could not beat)."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
