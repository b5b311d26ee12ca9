"""GET /healthz: open, reports the database and Temporal separately."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.db import make_engine
from core.temporal import connect
from tests.api.conftest import Api
from tests.api.locks import writes_blocked
from tests.conftest import TEST_CONVERTER, _bin, register_search_attributes
from worker import build_worker


@asynccontextmanager
async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_healthz_is_ok_when_both_answer_and_needs_no_key(api: Api):
    response = await api.get("/healthz", role=None)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True} and body["temporal"] == {"ok": True}
    # The time-skipping test server cannot describe task queues: the worker is not judged.
    assert (
        body["worker"]["ok"] is None and "does not describe task queues" in body["worker"]["error"]
    )


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


async def test_healthz_names_the_database_unwritable_while_writes_are_blocked(
    api: Api, app: FastAPI, database_url: str
):
    async with writes_blocked(database_url):  # SELECT 1 still answers
        response = await api.get("/healthz", role=None)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["temporal"] == {"ok": True}
    assert body["database"]["ok"] is False and "not writable" in body["database"]["error"]
    after = await api.get("/healthz", role=None)
    assert after.json()["database"] == {"ok": True}  # the probe's connection waits as usual


async def test_healthz_reports_a_task_queue_without_a_worker_as_degraded(
    settings, engine, sessions, reference_data
):
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_bin("temporal"), data_converter=TEST_CONVERTER
    )
    async with env:
        await register_search_attributes(env.client)
        async with client_for(create_app(settings, temporal=env.client, engine=engine)) as client:
            idle = await client.get("/healthz")
            async with build_worker(env.client, settings, sessions):
                for _ in range(100):
                    polled = await client.get("/healthz")
                    if polled.json()["worker"]["ok"]:
                        break
                    await asyncio.sleep(0.1)

    assert idle.status_code == 200  # reads and openings still work without a worker
    assert idle.json()["status"] == "degraded"
    assert idle.json()["worker"] == {
        "ok": False,
        "error": f"no worker polls the task queue '{settings.temporal_task_queue}'",
    }
    assert polled.status_code == 200 and polled.json()["status"] == "ok"
    assert polled.json()["worker"]["ok"] is True and polled.json()["worker"]["pollers"] >= 1
