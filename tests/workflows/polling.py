"""Polling a case's state in tests whose cases continue as new.

The time-skipping test server delivers a query with a workflow task; one that arrives while
the run continues as new can be lost and only fail at the query's deadline. So each query
here has a short deadline and a lost one is simply asked again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from schemas.cases import CaseSnapshot, CaseState
from schemas.contracts import STATE_QUERY
from tests.workflows.fakes import FakeWorld


async def state(handle: WorkflowHandle) -> CaseState:
    for _ in range(20):
        try:
            return await handle.query(
                STATE_QUERY, result_type=CaseState, rpc_timeout=timedelta(seconds=2)
            )
        except RPCError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never answered its state query")


async def until(handle: WorkflowHandle, check: Callable[[CaseState], object]) -> CaseState:
    for _ in range(250):
        current = await state(handle)
        if check(current):
            return current
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition never held; last state {current.status} {current.details}")


async def projected(
    world: FakeWorld, case_id: str, check: Callable[[CaseSnapshot], object]
) -> CaseSnapshot:
    """The case's latest projection (what `record_case` wrote) once it satisfies `check`:
    no query, so nothing to lose while a run continues as new."""
    latest: CaseSnapshot | None = None
    for _ in range(250):
        mine = [p for p in world.projections if p.case_id == case_id]
        latest = max(mine, key=lambda p: p.version) if mine else None
        if latest is not None and check(latest):
            return latest
        await asyncio.sleep(0.02)
    raise AssertionError(f"projection never satisfied the check; last {latest}")
