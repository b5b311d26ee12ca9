"""Helpers for the claim tests: a real PNG, a shipment record and a claim to open."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from core.db import SessionFactory
from schemas.tables import Shipment
from tests.api.conftest import CLIENT_ID, DEPOT_ID, DRIVER_ID, Api, shipment_id

# A small upload limit for these tests (the system's evidence PDFs stay well under it).
MAX_UPLOAD = 100_000
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (8-bit grey), built by hand."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


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
