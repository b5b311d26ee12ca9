"""The worker SIGKILLed again and again while cases of every type open and run: each case
reaches the state it should, and each message was accepted by SendGrid exactly once."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from core.bootstrap import DEMO_CLIENT_ID, DEMO_DEPOT_ID
from schemas.enums import MessageStatus
from schemas.tables import Message
from tests import files
from tests.api.drivers import EXPIRING
from tests.faults.harness import FaultStack, fault_stack, interruptions, persist
from tests.sendgrid_fake import running_fake_sendgrid

pytestmark = pytest.mark.faults

KILLS = 10


async def pause() -> None:
    """Openings spread over the storm, so kills land while cases are at work."""
    await asyncio.sleep(random.uniform(0.7, 1.8))


async def open_cases(stack: FaultStack) -> dict[str, str]:
    """Cases of every type opened over HTTP, each with the status it should reach; one
    onboarding is taken to activation (every document uploaded and approved while the
    worker keeps dying), which starts the driver's compliance watch."""
    http, expected = stack.http, {}
    now = datetime.now(UTC)
    for n in range(6):
        shipment = f"SHP-{uuid.uuid4().hex[:8]}"
        response = await http.post(
            "/cases/failed-deliveries",
            json={
                "shipment_id": shipment,
                "client_id": DEMO_CLIENT_ID,
                "driver_id": "driver-001",
                "customer": {"name": f"Customer {n}", "email": f"customer{n}@example.com"},
                "address": {"line1": "1 High St", "city": "Leeds", "postal_code": "LS1 1AA"},
                "attempt_number": 1,
                "reason": "not_home",
                "attempted_at": now.isoformat(),
            },
        )
        assert response.status_code == 201, response.text
        expected[response.json()["case_id"]] = "waiting_on_customer"
        await pause()
    for n in range(3):
        response = await http.post(
            "/cases/damage-claims",
            json={
                "shipment_id": f"SHP-{uuid.uuid4().hex[:8]}",
                "client_id": DEMO_CLIENT_ID,
                "claim_type": "damaged",
                "reported_by": "customer",
                "delivery_event_at": (now - timedelta(hours=2)).isoformat(),
                "declared_value": "49.90",
                "currency": "GBP",
                "description": "Crushed box",
                "customer": {"name": f"Claimant {n}", "email": f"claimant{n}@example.com"},
                "driver_id": "driver-001",
            },
        )
        assert response.status_code == 201, response.text
        expected[response.json()["case_id"]] = "gathering_evidence"
        await pause()
    for n in range(2):
        response = await http.post(
            "/cases/driver-onboardings",
            json={
                "name": f"New Driver {n}",
                "email": f"newdriver{n}@example.com",
                "depot_id": DEMO_DEPOT_ID,
                "vehicle_type": "van",
                "planned_start_date": (date.today() + timedelta(days=14)).isoformat(),
            },
        )
        assert response.status_code == 201, response.text
        expected[response.json()["case_id"]] = "collecting_documents"
        await pause()
    activated = await activate(stack, response.json()["case_id"])
    expected[response.json()["case_id"]] = "closed"
    expected[activated] = "monitoring"
    due = date.today() - timedelta(days=8)
    for _ in range(3):
        response = await http.post(
            "/cases/unpaid-invoices",
            json={
                "invoice_id": f"INV-{uuid.uuid4().hex[:8]}",
                "client_id": DEMO_CLIENT_ID,
                "amount": "120.00",
                "currency": "GBP",
                "issued_on": (due - timedelta(days=30)).isoformat(),
                "due_on": due.isoformat(),
            },
        )
        assert response.status_code == 201, response.text
        expected[response.json()["case_id"]] = "awaiting_payment"
        await pause()
    return expected


async def activate(stack: FaultStack, case_id: str) -> str:
    """Upload and approve every document the onboarding asks for, each request retried with
    its Idempotency-Key while the worker is down; the compliance watch's case id."""
    http = stack.http

    async def detail() -> dict[str, Any]:
        response = await persist(http, "GET", f"/cases/{case_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    await stack.until(
        lambda: _status_is(http, case_id, "collecting_documents"), "asked for documents"
    )
    for item in (await detail())["details"]["checklist"]:
        color = random.choice(["red", "green", "blue", "black", "white"])
        uploaded = await persist(
            http,
            "POST",
            f"/cases/{case_id}/documents",
            data={"kind": item["kind"]},
            files={"file": ("scan.png", files.png(color=color), "image/png")},
        )
        assert uploaded.status_code == 200, uploaded.text
        entry = next(
            i for i in uploaded.json()["details"]["checklist"] if i["kind"] == item["kind"]
        )
        review: dict[str, Any] = {"decision": "approved"}
        if item["kind"] in EXPIRING:
            review["expires_on"] = (date.today() + timedelta(days=400)).isoformat()
        approved = await persist(
            http,
            "POST",
            f"/cases/{case_id}/documents/{entry['document']['id']}/review",
            json=review,
        )
        assert approved.status_code == 200, approved.text
        await pause()
    return case_id.replace("driver-onboarding-", "driver-compliance-")


async def _status_is(http: Any, case_id: str, status: str) -> bool:
    response = await http.get(f"/cases/{case_id}")
    return response.status_code == 200 and response.json()["status"] == status


async def storm(stack: FaultStack, kills: int) -> None:
    """Start the worker, let it work for a moment, SIGKILL it; again and again; then start
    the one that lives. The first two kills land while an email is on its way to SendGrid
    (the request dropped unanswered), so the test never depends on a random kill landing
    on work in progress; the rest land wherever they fall."""
    for n in range(kills):
        stack.worker.start()
        if n < 2:
            stack.sendgrid.drop_next(stack.worker.kill)
            if await asyncio.to_thread(stack.sendgrid.dropped.wait, 30):
                continue
            stack.sendgrid.on_next = None  # no email came: a kill like the others
        await asyncio.sleep(random.uniform(2.0, 4.5))  # it starts in ~2 s, then works
        stack.worker.kill()
    stack.worker.start()


async def test_cases_of_every_type_survive_a_worker_killed_again_and_again(tmp_path: Path):
    with running_fake_sendgrid() as sendgrid:
        async with fault_stack(tmp_path, sendgrid) as stack:
            storming = asyncio.create_task(storm(stack, KILLS))
            expected = await open_cases(stack)
            await storming

            async def all_reached() -> bool:
                cases = [await stack.case(case_id) for case_id in expected]
                return all(c.get("status") == expected[c.get("case_id", "")] for c in cases)

            await stack.until(all_reached, "brought every case to its state", within=120)

            async def all_sent() -> bool:
                async with stack.sessions() as session:
                    rows = (await session.exec(select(Message))).all()
                return bool(rows) and all(row.status is MessageStatus.SENT for row in rows)

            await stack.until(all_sent, "sent every message", within=60)
            sent = await stack.sent_messages()
            accepted = stack.sendgrid.accepted_keys()
            interrupted = await interruptions(stack, list(expected))

    assert stack.worker.started == KILLS + 1
    assert interrupted > 0, "no kill landed on work in progress: the test proved nothing"
    keys = {message.key for message in sent}
    for case_id, status in expected.items():  # each case sent what its opening sends
        if status != "monitoring":  # a watch's first email is 30 days before an expiry
            assert any(key.startswith(f"{case_id}/") for key in keys), case_id
    assert set(accepted) == keys  # nothing SendGrid accepted is missing from the outbox
    assert {key: n for key, n in accepted.items() if n != 1} == {}, "sent more than once"
