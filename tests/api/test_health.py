"""GET /healthz: open, reports the database and Temporal separately."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from api.main import create_app
from core.db import make_engine
from core.temporal import connect
from tests.api.conftest import Api


@asynccontextmanager
async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_healthz_is_ok_when_both_answer_and_needs_no_key(api: Api):
    response = await api.get("/healthz", role=None)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": {"ok": True}, "temporal": {"ok": True}}


async def test_healthz_is_degraded_when_temporal_is_down(settings, engine):
    down = await connect(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}), lazy=True)
    async with client_for(create_app(settings, temporal=down, engine=engine)) as client:
        response = await client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == {"ok": True}
    assert body["temporal"]["ok"] is False and body["temporal"]["error"]


async def test_healthz_is_degraded_when_the_database_is_down(settings, time_env, tmp_path):
    broken = make_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/casedesk.db")
    try:
        app = create_app(settings, temporal=time_env.client, engine=broken)
        async with client_for(app) as client:
            response = await client.get("/healthz")
    finally:
        await broken.dispose()

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["temporal"] == {"ok": True}
    assert body["database"]["ok"] is False and "OperationalError" in body["database"]["error"]
