"""End to end for a damage claim: a real Temporal dev server, the real worker and the real API
on a local port, a migrated and seeded SQLite database. A claim is opened over HTTP; the driver
and the customer follow the upload links in their stored emails and upload evidence through
the customer page; the package is compiled and emailed with the ZIP attached; ops record the
approval; the case closes as paid."""

from __future__ import annotations

import asyncio
import io
import struct
import uuid
import zipfile
import zlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from core.bootstrap import DEMO_CLIENT_ID
from tests import files
from tests.e2e.stack import case_when, link_in, message_when

pytestmark = pytest.mark.e2e

PDF = files.pdf()


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


async def test_damage_claim_from_report_to_paid(stack) -> None:
    http, env = stack
    shipment = f"SHP-{uuid.uuid4().hex[:10]}"
    opened = await http.post(
        "/cases/damage-claims",
        json={
            "shipment_id": shipment,
            "client_id": DEMO_CLIENT_ID,
            "claim_type": "damaged",
            "reported_by": "customer",
            "delivery_event_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
            "declared_value": "129.90",
            "currency": "GBP",
            "description": "Box crushed, vase broken",
            "customer": {"name": "Casey Customer", "email": "casey@example.com"},
            "driver_id": "driver-001",
        },
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    assert case_id == f"damage-claim-{shipment}"
    gathering = await case_when(http, case_id, "gathering_evidence")
    assert gathering["deadline_at"] and gathering["overdue"] is False

    # The driver and the customer upload through the links in their emails (no API key).
    driver_link = link_in(await message_when(http, case_id, "claims/evidence_request_driver"))
    customer_link = link_in(await message_when(http, case_id, "claims/evidence_request_customer"))
    async with httpx.AsyncClient(timeout=30) as browser:
        form = await browser.get(driver_link)
        assert form.status_code == 200 and 'type="file"' in form.text
        uploads = [
            (driver_link, "damage_photos", ("photo.png", png(), "image/png")),
            (customer_link, "customer_attestation", ("statement.pdf", PDF, "application/pdf")),
            (customer_link, "proof_of_value", ("../../receipt.pdf", PDF, "application/pdf")),
        ]
        for link, kind, upload in uploads:
            done = await browser.post(link, data={"kind": kind}, files={"file": upload})
            assert done.status_code == 200, done.text

    # Complete checklist: the package is compiled and emailed to the claims contact.
    filed = await case_when(http, case_id, "awaiting_decision")
    assert set(filed["details"]["checklist"].values()) == {"present"}
    email = await message_when(http, case_id, "claims/claim_filed")
    assert email["status"] == "sent"
    package = next(d for d in filed["documents"] if d["kind"] == "claim_package")
    download = await http.get(package["download_url"])
    assert download.status_code == 200 and download.content[:4] == b"PK\x03\x04"
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert "cover.html" in names and "manifest.json" in names
    assert sum(name.startswith("documents/") for name in names) == 5
    assert not any(".." in name for name in names)

    decided = await http.post(
        f"/cases/{case_id}/decision", json={"decision": "approved", "amount": "129.90"}
    )
    assert decided.status_code == 200, decided.text
    closed = await case_when(http, case_id, "closed")
    assert closed["resolution"] == "paid"
    kinds = [event["kind"] for event in closed["timeline"]]
    assert kinds.count("document_added") == 5 and "decision" in kinds
    result = await asyncio.wait_for(env.client.get_workflow_handle(case_id).result(), 30)
    assert result["resolution"] == "paid"
