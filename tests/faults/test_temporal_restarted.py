"""The Temporal server stopped for a while and started again on the same SQLite file, with
cases' timers falling due while it is down: the API answers 503 problem details for what
needs Temporal, and after the restart every timer fires once (each reminder and escalation
accepted by SendGrid exactly once)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from core.bootstrap import DEMO_CLIENT_ID
from schemas.tables import Client, Message
from tests.faults.harness import FaultStack, fault_stack
from tests.sendgrid_fake import running_fake_sendgrid

pytestmark = pytest.mark.faults

# The demo client's ladder, shortened so it falls due while the server is down.
FAST = {"failed_delivery": {"reminder_after": "PT12S", "escalate_after": "PT20S"}}
DOWN_FOR = 25.0
TEMPLATES = {
    "failed_delivery/customer_notice",
    "failed_delivery/customer_reminder",
    "failed_delivery/dispatcher_escalation",
}


def failed_delivery() -> dict[str, object]:
    return {
        "shipment_id": f"SHP-{uuid.uuid4().hex[:8]}",
        "client_id": DEMO_CLIENT_ID,
        "driver_id": "driver-001",
        "customer": {"name": "Customer", "email": "customer@example.com"},
        "address": {"line1": "1 High St", "city": "Leeds", "postal_code": "LS1 1AA"},
        "attempt_number": 1,
        "reason": "not_home",
        "attempted_at": datetime.now(UTC).isoformat(),
    }


async def templates_sent(stack: FaultStack, case_id: str) -> list[str]:
    messages = await stack.sent_messages()
    return sorted(m.template for m in messages if m.case_id == case_id)


async def test_timers_due_while_temporal_is_down_fire_once_after_it_is_back(tmp_path: Path):
    with running_fake_sendgrid() as sendgrid:
        async with fault_stack(tmp_path, sendgrid) as stack:
            async with stack.sessions() as session:
                await session.exec(
                    update(Client)
                    .where(col(Client.id) == DEMO_CLIENT_ID)
                    .values(policy_overrides=FAST)
                )
                await session.commit()
            stack.worker.start()
            case_ids = []
            for _ in range(3):
                response = await stack.http.post("/cases/failed-deliveries", json=failed_delivery())
                assert response.status_code == 201, response.text
                case_ids.append(response.json()["case_id"])

            async def notified() -> bool:
                sent = [await templates_sent(stack, c) for c in case_ids]
                return all(s == ["failed_delivery/customer_notice"] for s in sent)

            await stack.until(notified, "sent every customer notice", within=60)

            await stack.stop_temporal()
            started = time.monotonic()
            refused = await stack.http.post("/cases/failed-deliveries", json=failed_delivery())
            refused_after = time.monotonic() - started
            read = await stack.http.get(f"/cases/{case_ids[0]}")
            await asyncio.sleep(max(0.0, DOWN_FOR - (time.monotonic() - started)))
            await stack.start_temporal()

            async def all_fired() -> bool:
                sent = [set(await templates_sent(stack, c)) for c in case_ids]
                return all(s == TEMPLATES for s in sent)

            await stack.until(all_fired, "fired every reminder and escalation", within=90)
            await asyncio.sleep(3)  # time for any second firing to show itself
            accepted = stack.sendgrid.accepted_keys()
            async with stack.sessions() as session:
                rows = (await session.exec(select(Message))).all()

    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused_after < 15, f"the 503 took {refused_after:.1f} s"
    assert read.status_code in (200, 503), read.text
    if read.status_code == 200:  # from the index, saying so
        assert read.json()["live"] is False
    for case_id in case_ids:
        mine = [row for row in rows if row.case_id == case_id]
        assert sorted(row.template for row in mine) == sorted(TEMPLATES), case_id
        for row in mine:
            assert accepted[row.key] == 1, row.key
