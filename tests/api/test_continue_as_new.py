"""A case that continued as new is, to the API, the same case: one detail, one unbroken
timeline (read from the projection, since the workflow keeps only what it has not written),
its messages once each, and its actions still accepted.

The time-skipping test server can lose a query that arrives while a run continues as new
(and then holds the clock until the query's deadline), so this test waits on the SQL index
(the case list) and on the run ids, and reads the live detail only while the case sits idle
on a timer."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlmodel import col, select

from core.db import SessionFactory
from schemas.tables import Client, TimelineEntry
from tests.api.conftest import CLIENT_ID, Api, run_id

HOUR = timedelta(hours=1)


async def bounded_client(sessions: SessionFactory) -> None:
    """The client's failed deliveries continue as new when a wait finds 35 events."""
    async with sessions() as session:
        client = await session.get(Client, CLIENT_ID)
        assert client is not None
        client.policy_overrides = {"failed_delivery": {"history_event_budget": 35}}
        session.add(client)
        await session.commit()


async def next_run(time_env, case_id: str, previous: str) -> str:
    for _ in range(300):
        current = await run_id(time_env, case_id)
        if current != previous:
            return current
        await asyncio.sleep(0.02)
    raise AssertionError(f"{case_id} never continued as new")


async def indexed(api: Api, case_id: str, **expected: object) -> dict:
    """The case's row in the index (`GET /cases`: SQL only) once it has `expected`."""
    for _ in range(300):
        page = (await api.get("/cases", params={"q": case_id})).json()
        rows = [item for item in page["items"] if item["case_id"] == case_id]
        if rows and all(rows[0][key] == value for key, value in expected.items()):
            return rows[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{case_id} never indexed with {expected}")


async def test_a_case_that_continued_as_new_reads_as_one_case(api: Api, time_env, sessions):
    await bounded_client(sessions)
    opened = await api.open_case()
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    first = await run_id(time_env, case_id)
    second = await next_run(time_env, case_id, first)  # continued at its first wait
    await indexed(api, case_id, status="waiting_on_customer", next_step="remind the customer")

    await time_env.sleep(25 * HOUR)  # the reminder comes due in the continued run
    await indexed(api, case_id, next_step="escalate to the dispatcher")
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert await run_id(time_env, case_id) == second  # idle on its 48 h step, not continuing

    assert detail["live"] is True and detail["status"] == "waiting_on_customer"
    seqs = [event["seq"] for event in detail["timeline"]]
    assert seqs == list(range(1, len(seqs) + 1))
    kinds = [event["kind"] for event in detail["timeline"]]
    assert kinds[:3] == ["opened", "attempt_failed", "status"]
    assert kinds.count("opened") == 1 and kinds.count("message") == 2  # notice, reminder
    keys = Counter(message["key"] for message in detail["messages"])
    assert keys == {f"{case_id}/a1/customer-notice": 1, f"{case_id}/a1/customer-reminder": 1}
    assert detail["details"]["policy"]["history_event_budget"] == 35

    booked = await api.post(
        f"/cases/{case_id}/redelivery",
        json={"option": "neighbour", "neighbour_name": "Bob", "neighbour_address": "3 Main St"},
    )
    assert booked.status_code == 200, booked.text
    await indexed(api, case_id, status="redelivery_scheduled")
    async with sessions() as session:
        rows = await session.exec(
            select(TimelineEntry.seq)
            .where(TimelineEntry.case_id == case_id)
            .order_by(col(TimelineEntry.seq))
        )
        written = list(rows.all())
    assert written == list(range(1, len(written) + 1)) and len(written) > len(kinds)
