"""Helpers for the unpaid-invoice tests: an invoice to open and the client's billing contact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from core.db import SessionFactory
from schemas.enums import ContactKind
from schemas.tables import ClientContact
from tests.api.conftest import CLIENT_ID


def invoice_id() -> str:
    return f"INV-{uuid.uuid4().hex[:10]}"


def invoice(**fields: Any) -> dict[str, Any]:
    """An invoice issued today, due in 30 days (the default terms), in GBP."""
    today = datetime.now(UTC).date()
    body: dict[str, Any] = {
        "invoice_id": invoice_id(),
        "client_id": CLIENT_ID,
        "amount": "1234.50",
        "currency": "GBP",
        "issued_on": today.isoformat(),
        "due_on": (today + timedelta(days=30)).isoformat(),
        "reference": "PO-77",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


async def add_billing_contact(sessions: SessionFactory) -> None:
    """The client's billing contact, whom the dunning emails go to."""
    async with sessions() as session:
        session.add(
            ClientContact(
                client_id=CLIENT_ID,
                kind=ContactKind.BILLING,
                name="Bill Payables",
                email="payables@acme.example",
            )
        )
        await session.commit()
