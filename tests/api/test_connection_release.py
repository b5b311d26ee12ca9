"""An API request gives its database connection back to the pool before it waits on
Temporal (a start, an update, a query), so a burst of requests whose workflows are slow to
answer does not exhaust the pool: the checked-out count is zero at each of those calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from api import casework
from api.routes import cases as case_routes
from core.db import make_session_factory, release_connection
from schemas.tables import Client
from tests.api.conftest import Api, failed_delivery


def _spy(
    engine: AsyncEngine, seen: list[tuple[str, int]], name: str, real: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        pool = engine.sync_engine.pool
        assert isinstance(pool, QueuePool), pool  # SQLite's and PostgreSQL's engines alike
        seen.append((name, pool.checkedout()))
        return await real(*args, **kwargs)

    return call


async def test_no_connection_is_held_while_temporal_answers(
    api: Api, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
):
    seen: list[tuple[str, int]] = []
    for module, name in (
        (casework, "start_case"),
        (casework, "query_state"),
        (case_routes, "run_update"),
    ):
        monkeypatch.setattr(module, name, _spy(engine, seen, name, getattr(module, name)))

    opened = await api.post("/cases/failed-deliveries", json=failed_delivery())
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")
    noted = await api.post(f"/cases/{case_id}/notes", json={"text": "Called the customer"})
    assert noted.status_code == 200, noted.text

    assert {name for name, _ in seen} == {"start_case", "query_state", "run_update"}
    assert [n for n in seen if n[1] != 0] == []


async def test_pending_changes_keep_their_transaction(engine: AsyncEngine):
    sessions = make_session_factory(engine)
    async with sessions() as session:
        session.add(Client(id="cl-release", name="Release Ltd"))
        await release_connection(session)  # not committed: the change is still pending
        assert session.in_transaction() and session.new
        await session.rollback()
    async with sessions() as session:
        assert await session.get(Client, "cl-release") is None
