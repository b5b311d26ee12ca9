"""`make demo` on the real stack: a day of cases of every type, in every kind of state."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from core.demo import run_demo


async def _listed(http: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    cases = [(await http.get(f"/cases/{case_id}")).json() for case_id in ids]
    return cases


async def test_the_demo_opens_a_living_day_of_every_case_type(stack) -> None:
    http, _env = stack
    key = http.headers["Authorization"].removeprefix("Bearer ")

    opened = await run_demo(str(http.base_url), key)

    assert set(opened) == {
        "failed deliveries",
        "damage claims",
        "driver onboardings",
        "unpaid invoices",
    }
    ids = [case_id for kind in opened.values() for case_id in kind]
    assert len(ids) == len(set(ids)) == 18
    # Give the timers that were already due (events dated earlier) a moment to fire.
    wanted = {"closed", "waiting_on_customer", "redelivery_scheduled"}
    cases: list[dict[str, Any]] = []
    for _ in range(100):
        cases = await _listed(http, ids)
        statuses = Counter(case["status"] for case in cases)
        escalated = [case for case in cases if case["escalated"] and not case["assignee"]]
        if wanted <= set(statuses) and len(escalated) >= 2 and statuses["open"] == 0:
            break
        await asyncio.sleep(0.2)
    statuses = Counter(case["status"] for case in cases)
    assert wanted <= set(statuses), statuses
    assert {"gathering_evidence", "collecting_documents", "awaiting_payment"} <= set(statuses)
    resolutions = Counter(case["resolution"] for case in cases if case["status"] == "closed")
    assert set(resolutions) == {"delivered", "returned_to_sender", "paid", "withdrawn"}
    kinds = {event["kind"] for case in cases for event in case["timeline"]}
    assert "escalated" in kinds and "note" in kinds
    claim = next(c for c in cases if c["case_id"].endswith("-C03"))
    assert claim["escalated"], [e["summary"] for e in claim["timeline"]]
    # The escalated, unassigned cases are on the stuck radar; the assigned one is not.
    stuck = (await http.get("/cases/stuck")).json()
    listed = {entry["case_id"] for entry in stuck["items"]}
    unassigned = {c["case_id"] for c in cases if c["escalated"] and not c["assignee"]}
    assert unassigned and unassigned <= listed, (unassigned, listed)
    assigned = [c["case_id"] for c in cases if c["assignee"]]
    assert assigned and not set(assigned) & {
        e["case_id"]
        for e in stuck["items"]
        if any(r["kind"] == "escalated_unassigned" for r in e["reasons"])
    }
