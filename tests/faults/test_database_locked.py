"""The application database unavailable for writes for a while (its write lock held from
outside, as a stuck migration or a runaway transaction would): the API answers what needs a
write with a 503 problem, the worker's activities wait and retry, nothing is lost, and once
the lock is gone the projections catch up and every message goes out once."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from core.bootstrap import DEMO_CLIENT_ID, DEMO_DEPOT_ID
from core.db import LOCK_TIMEOUT_SECONDS
from schemas.enums import MessageStatus
from schemas.tables import Case, Message
from tests.api.locks import writes_blocked
from tests.faults.harness import fault_stack, interruptions
from tests.sendgrid_fake import running_fake_sendgrid

pytestmark = pytest.mark.faults

LOCKED_FOR = 25.0


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


async def test_writes_blocked_for_a_while_lose_nothing(tmp_path: Path):
    with running_fake_sendgrid() as sendgrid:
        async with fault_stack(tmp_path, sendgrid) as stack:
            stack.worker.start()
            url = stack.settings.resolved_database_url
            async with writes_blocked(url):
                started = time.monotonic()
                opened = []
                for _ in range(3):  # Temporal takes the opening; the projection must wait
                    response = await stack.http.post(
                        "/cases/failed-deliveries", json=failed_delivery()
                    )
                    opened.append(response)
                stop = {
                    "shipment_id": "SHP-LOCKED",
                    "client_id": DEMO_CLIENT_ID,
                    "depot_id": DEMO_DEPOT_ID,
                    "attempted_at": datetime.now(UTC).isoformat(),
                    "outcome": "delivered",
                    "zone": None,
                    "residential": False,
                    "attempt_number": 1,
                }
                refused = await stack.http.post("/deliveries", json=[stop])
                refused_after = time.monotonic() - started
                await asyncio.sleep(max(0.0, LOCKED_FOR - (time.monotonic() - started)))
                async with stack.sessions() as session:  # reads go on; nothing was written
                    indexed_while_locked = len((await session.exec(select(Case))).all())

            case_ids = [r.json()["case_id"] for r in opened if r.status_code in (200, 201)]

            async def caught_up() -> bool:
                cases = [await stack.case(c) for c in case_ids]
                return all(c.get("status") == "waiting_on_customer" for c in cases)

            await stack.until(caught_up, "caught the projections up", within=120)

            async def all_sent() -> bool:
                async with stack.sessions() as session:
                    rows = (await session.exec(select(Message))).all()
                mine = [r for r in rows if r.case_id in case_ids]
                return len(mine) == len(case_ids) and all(
                    r.status is MessageStatus.SENT for r in mine
                )

            await stack.until(all_sent, "sent every customer notice", within=60)
            accepted = stack.sendgrid.accepted_keys()
            sent = [m for m in await stack.sent_messages() if m.case_id in case_ids]
            again = await stack.http.post("/deliveries", json=[stop])
            retried = await interruptions(stack, case_ids)

    assert [r.status_code for r in opened] == [201, 201, 201], [r.text for r in opened]
    assert indexed_while_locked == 0  # the projections waited for the lock
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("database-unavailable")
    assert refused_after < LOCKED_FOR
    assert len(sent) == 3 and all(accepted[m.key] == 1 for m in sent)
    assert again.status_code == 200 and again.json()["new"] == 1  # the refused stop, now in
    assert LOCK_TIMEOUT_SECONDS < LOCKED_FOR
    assert retried > 0, "no activity waited out the lock and retried: the test proved nothing"
