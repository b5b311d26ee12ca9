"""`GET /healthz` (no auth): can the database take writes, does Temporal answer, does a
worker poll the task queue. Each check is bounded (`Timeouts.health`) and named in the body.

503 when the database or Temporal fails (the API cannot do its work); a task queue without a
worker is `degraded` with 200 (the API still answers reads and takes cases, which wait for
the worker), so an orchestrator does not restart a healthy API for a missing worker.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Timeouts
from core.db import SQLITE_BUSY_TIMEOUT_MS
from schemas.tables import HealthCheck

router = APIRouter(tags=["health"])

PROBE_ROW = 1


def _failure(err: BaseException) -> dict[str, Any]:
    # The first line only: enough to act on, without dumping driver internals.
    message = (str(err).strip().splitlines() or [""])[0][:200]
    return {"ok": False, "error": f"{type(err).__name__}: {message}".rstrip(": ")}


async def _bounded_writes(conn: AsyncConnection, seconds: float) -> None:
    """Make a blocked write fail within `seconds` on this connection, not wait for a lock."""
    millis = max(1, int(seconds * 1000))
    if conn.dialect.name == "sqlite":
        await conn.execute(text(f"PRAGMA busy_timeout={millis}"))
    elif conn.dialect.name == "postgresql":
        await conn.execute(text(f"SET LOCAL lock_timeout = {millis}"))
        await conn.execute(text(f"SET LOCAL statement_timeout = {millis}"))


async def _write_probe(engine: AsyncEngine, seconds: float) -> None:
    """Rewrite the probe row and commit: a locked, read-only or full database fails."""
    async with engine.connect() as conn:
        try:
            async with conn.begin():
                await _bounded_writes(conn, seconds * 0.75)
                now = datetime.now(UTC)
                table = HealthCheck.__table__  # type: ignore[attr-defined]
                changed = await conn.execute(
                    update(table).where(table.c.id == PROBE_ROW).values(checked_at=now)
                )
                if changed.rowcount == 0:
                    await conn.execute(insert(table).values(id=PROBE_ROW, checked_at=now))
        finally:
            if conn.dialect.name == "sqlite":  # the pooled connection waits as usual again
                await conn.execute(text(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"))


async def _check_database(engine: AsyncEngine | None, seconds: float) -> dict[str, Any]:
    if engine is None:
        return {"ok": False, "error": "no database engine"}
    try:
        await asyncio.wait_for(_write_probe(engine, seconds), seconds)
    except TimeoutError:
        return {"ok": False, "error": f"not writable: no write went through within {seconds} s"}
    except Exception as err:  # any failure means "not writable"; the reason is reported
        failure = _failure(err)
        return {"ok": False, "error": f"not writable: {failure['error']}"}
    return {"ok": True}


async def _check_temporal(client: Client | None, seconds: float) -> dict[str, Any]:
    if client is None:
        return {"ok": False, "error": "no Temporal client"}
    try:
        healthy = await asyncio.wait_for(
            client.service_client.check_health(timeout=timedelta(seconds=seconds)), seconds
        )
    except TimeoutError:
        return {"ok": False, "error": f"unreachable: no answer within {seconds} s"}
    except Exception as err:  # a lazy client that cannot connect raises RuntimeError
        return _failure(err)
    return {"ok": True} if healthy else {"ok": False, "error": "Temporal reports not serving"}


async def _check_worker(client: Client, task_queue: str, seconds: float) -> dict[str, Any]:
    """A worker is polling the task queue (Temporal's task-queue description lists it)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    try:
        described = await asyncio.wait_for(
            client.workflow_service.describe_task_queue(
                request, timeout=timedelta(seconds=seconds)
            ),
            seconds,
        )
    except RPCError as err:
        if err.status == RPCStatusCode.UNIMPLEMENTED:  # e.g. the time-skipping test server
            return {"ok": None, "error": "this Temporal server does not describe task queues"}
        return _failure(err)
    except TimeoutError:
        return {"ok": False, "error": f"no task-queue description within {seconds} s"}
    except Exception as err:
        return _failure(err)
    pollers = len(described.pollers)
    if pollers == 0:
        return {"ok": False, "error": f"no worker polls the task queue '{task_queue}'"}
    return {"ok": True, "pollers": pollers}


@router.get("/healthz", summary="Database writable, Temporal reachable, a worker polling")
async def healthz(request: Request) -> JSONResponse:
    state = request.app.state
    timeouts: Timeouts = state.timeouts
    seconds = timeouts.health.total_seconds()
    database, temporal = await asyncio.gather(
        _check_database(state.engine, seconds), _check_temporal(state.temporal, seconds)
    )
    if temporal["ok"]:
        queue = state.settings.temporal_task_queue
        worker = await _check_worker(state.temporal, queue, seconds)
    else:
        worker = {"ok": None, "error": "unknown: Temporal is unreachable"}
    ok = database["ok"] and temporal["ok"]
    body = {
        "status": "ok" if ok and worker["ok"] is not False else "degraded",
        "database": database,
        "temporal": temporal,
        "worker": worker,
    }
    return JSONResponse(body, status_code=200 if ok else 503)
