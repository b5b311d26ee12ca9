"""`GET /healthz`: is the database reachable, is Temporal reachable (no auth)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.deps import Timeouts

router = APIRouter(tags=["health"])


def _failure(err: BaseException) -> dict[str, Any]:
    # The first line only: enough to act on, without dumping driver internals.
    message = (str(err).strip().splitlines() or [""])[0][:200]
    return {"ok": False, "error": f"{type(err).__name__}: {message}".rstrip(": ")}


async def _check_database(engine: AsyncEngine | None, seconds: float) -> dict[str, Any]:
    if engine is None:
        return {"ok": False, "error": "no database engine"}

    async def ping() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(ping(), seconds)
    except Exception as err:  # any failure means "not reachable"; the reason is reported
        return _failure(err)
    return {"ok": True}


async def _check_temporal(client: Client | None, seconds: float) -> dict[str, Any]:
    if client is None:
        return {"ok": False, "error": "no Temporal client"}
    try:
        healthy = await asyncio.wait_for(
            client.service_client.check_health(timeout=timedelta(seconds=seconds)), seconds + 0.5
        )
    except Exception as err:  # a lazy client that cannot connect raises RuntimeError
        return _failure(err)
    return {"ok": True} if healthy else {"ok": False, "error": "Temporal reports not serving"}


@router.get("/healthz", summary="Database and Temporal reachability")
async def healthz(request: Request) -> JSONResponse:
    state = request.app.state
    timeouts: Timeouts = state.timeouts
    seconds = timeouts.health.total_seconds()
    database, temporal = await asyncio.gather(
        _check_database(state.engine, seconds), _check_temporal(state.temporal, seconds)
    )
    ok = database["ok"] and temporal["ok"]
    body = {"status": "ok" if ok else "degraded", "database": database, "temporal": temporal}
    return JSONResponse(body, status_code=200 if ok else 503)
