"""End to end on the real stack (`tests/e2e/stack.py`): an invoice already 8 days overdue is
opened over HTTP with its PDF; the +7 reminder (and only it) reaches the billing contact with
the invoice attached; a partial payment lowers the balance and keeps the case open; the rest
closes it paid with a thank-you, and the timeline tells the story."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest

from activities.pdf import render_pdf
from core.bootstrap import DEMO_CLIENT_ID
from tests.e2e.stack import case_when, message_when

pytestmark = pytest.mark.e2e


async def test_an_overdue_invoice_is_chased_then_paid_in_two_parts(stack) -> None:
    http, _ = stack
    invoice_id = f"INV-{uuid.uuid4().hex[:8]}"
    due = datetime.now(UTC).date() - timedelta(days=8)
    pdf = render_pdf([f"Invoice {invoice_id}", "Total due: 1,234.50 GBP"], title="Invoice")

    opened = await http.post(
        "/cases/unpaid-invoices",
        json={
            "invoice_id": invoice_id,
            "client_id": DEMO_CLIENT_ID,
            "amount": "1234.50",
            "currency": "GBP",
            "issued_on": (due - timedelta(days=30)).isoformat(),
            "due_on": due.isoformat(),
            "reference": "PO-2231",
            "invoice_pdf": base64.b64encode(pdf).decode(),
        },
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    assert case_id == f"unpaid-invoice-{invoice_id}"

    reminder = await message_when(http, case_id, "dunning/overdue")
    assert reminder["recipient"]["email"] == "accounts.demo-shop@example.com"
    assert "8 days past due" in reminder["subject"]
    assert "Balance due: 1,234.50 GBP" in reminder["text_body"]
    assert [a["content_type"] for a in reminder["attachments"]] == ["application/pdf"]
    waiting = await case_when(http, case_id, "awaiting_payment")
    assert waiting["details"]["steps_sent"] == ["overdue-7"]  # no burst of past reminders
    next_step = datetime.combine(due + timedelta(days=14), time(9), tzinfo=UTC)
    assert datetime.fromisoformat(waiting["deadline_at"]) == next_step

    partial = await http.post(
        f"/cases/{case_id}/payments",
        json={
            "amount": "234.50",
            "paid_on": datetime.now(UTC).date().isoformat(),
            "reference": "BACS-1",
        },
    )
    assert partial.status_code == 200, partial.text
    assert partial.json()["details"]["balance"] == "1000.00"
    assert partial.json()["status"] == "awaiting_payment"

    rest = await http.post(
        f"/cases/{case_id}/payments",
        json={
            "amount": "1000.00",
            "paid_on": datetime.now(UTC).date().isoformat(),
            "reference": "BACS-2",
        },
    )
    assert rest.status_code == 200, rest.text

    closed = await case_when(http, case_id, "closed")
    assert closed["resolution"] == "paid"
    assert closed["details"]["balance"] == "0.00"
    assert [p["reference"] for p in closed["details"]["payments"]] == ["BACS-1", "BACS-2"]
    thanks = await message_when(http, case_id, "dunning/thank_you")
    assert thanks["recipient"]["email"] == "accounts.demo-shop@example.com"
    kinds = [event["kind"] for event in closed["timeline"]]
    assert kinds.count("payment") == 2
    assert kinds[0] == "opened" and kinds[-1] == "status"
    templates = sorted(
        m["template"]
        for m in (await http.get("/messages", params={"case_id": case_id})).json()["items"]
    )
    assert templates == ["dunning/overdue", "dunning/thank_you"]
