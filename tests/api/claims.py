"""Helpers for the claim tests: a real PNG, a shipment record and a claim to open."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from core.db import SessionFactory
from schemas.tables import Shipment
from tests.api.conftest import CLIENT_ID, DEPOT_ID, DRIVER_ID, Api, shipment_id

# A small upload limit for these tests (the system's evidence PDFs stay well under it).
MAX_UPLOAD = 100_000
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200


def png(width: int = 2, height: int = 2, shade: int = 128) -> bytes:
    """A real PNG (8-bit grey), as Pillow writes it: the store keeps uploaded images
    re-encoded, which leaves these bytes as they are (the same pixels, the same encoder)."""
    out = io.BytesIO()
    Image.new("L", (width, height), shade).save(out, "PNG")
    return out.getvalue()


async def add_shipment(sessions: SessionFactory, ship_id: str, **fields: Any) -> None:
    async with sessions() as session:
        session.add(
            Shipment(
                id=ship_id,
                client_id=CLIENT_ID,
                depot_id=DEPOT_ID,
                customer_name="Ada Customer",
                customer_email="ada@example.com",
                address={"line1": "1 Main St", "city": "London", "country": "GB"},
                **fields,
            )
        )
        await session.commit()


def claim(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "shipment_id": shipment_id(),
        "client_id": CLIENT_ID,
        "claim_type": "damaged",
        "reported_by": "customer",
        "delivery_event_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "declared_value": "149.90",
        "currency": "GBP",
        "description": "The box arrived crushed; the vase inside is broken.",
        "driver_id": DRIVER_ID,
    }
    body.update(fields)
    return body


async def wait_until(
    api: Api, case_id: str, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    return await api.poll(f"/cases/{case_id}", check, what)


async def open_gathering_claim(api: Api, sessions: SessionFactory, **fields: Any) -> str:
    """A damaged-parcel claim whose system evidence is in: it waits for people's documents."""
    body = claim(**fields)
    await add_shipment(sessions, body["shipment_id"])
    response = await api.post("/cases/damage-claims", json=body)
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    await wait_until(
        api,
        case_id,
        lambda b: (
            b["status"] == "gathering_evidence"
            and b["details"]["checklist"].get("attempt_record") == "present"
            and b["details"]["checklist"].get("proof_of_delivery") == "present"
        ),
        "gathered the system evidence",
    )
    return case_id
