"""A case that continued as new is, to the API, the same case: one detail, one unbroken
timeline (read from the projection, since the workflow keeps only what it has not written),
its messages once each, and its actions still accepted."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from core.db import SessionFactory
from schemas.tables import Client
from tests.api.conftest import CLIENT_ID, Api, run_id

HOUR = timedelta(hours=1)


async def bounded_client(sessions: SessionFactory) -> None:
    """The client's failed deliveries continue as new at (almost) every wait."""
    async with sessions() as session:
        client = await session.get(Client, CLIENT_ID)
        assert client is not None
        client.policy_overrides = {"failed_delivery": {"history_event_budget": 20}}
        session.add(client)
        await session.commit()


async def first_run_continued(time_env, case_id: str, first: str) -> None:
    for _ in range(200):
        if await run_id(time_env, case_id) != first:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{case_id} never continued as new")


async def test_a_case_that_continued_as_new_reads_as_one_case(api: Api, time_env, sessions):
    await bounded_client(sessions)
    opened = await api.open_case()
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    first = await run_id(time_env, case_id)
    await api.wait_for(case_id, "waiting_on_customer")
    await first_run_continued(time_env, case_id, first)

    await time_env.sleep(25 * HOUR)  # the reminder comes due in a continued run
    for _ in range(300):
        detail = (await api.get(f"/cases/{case_id}")).json()
        if detail["next_step"] == "escalate to the dispatcher":
            break
        await asyncio.sleep(0.05)

    assert detail["live"] is True and detail["status"] == "waiting_on_customer"
    seqs = [event["seq"] for event in detail["timeline"]]
    assert seqs == list(range(1, len(seqs) + 1))
    kinds = [event["kind"] for event in detail["timeline"]]
    assert kinds[:3] == ["opened", "attempt_failed", "status"]
    assert kinds.count("opened") == 1 and kinds.count("message") == 2  # notice, reminder
    keys = Counter(message["key"] for message in detail["messages"])
    assert keys == {f"{case_id}/a1/customer-notice": 1, f"{case_id}/a1/customer-reminder": 1}

    booked = await api.post(
        f"/cases/{case_id}/redelivery",
        json={"option": "neighbour", "neighbour_name": "Bob", "neighbour_address": "3 Main St"},
    )
    assert booked.status_code == 200, booked.text
    after = await api.wait_for(case_id, "redelivery_scheduled")
    seqs = [event["seq"] for event in after["timeline"]]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > len(kinds)
    assert after["details"]["policy"]["history_event_budget"] == 20
