"""Damage claims through the API: opening, evidence uploads, filing, the decision, downloads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.settings import Settings
from schemas.tables import Client
from tests.api.claims import (
    EXE,
    MAX_UPLOAD,
    add_shipment,
    claim,
    open_gathering_claim,
    png,
    wait_until,
)
from tests.api.conftest import CLIENT_ID, OTHER_DEPOT_ID, OTHER_DRIVER_ID, Api, assert_problem

REASONS = {
    "damage_photos": "The driver left before taking photos.",
    "customer_attestation": "The customer has not answered yet.",
    "proof_of_value": "The customer has not answered yet.",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_upload_bytes": MAX_UPLOAD})


async def upload(
    api: Api,
    case_id: str,
    kind: str,
    data: bytes,
    name: str = "photo.png",
    ctype: str = "image/png",
) -> httpx.Response:
    return await api.post(
        f"/cases/{case_id}/documents", data={"kind": kind}, files={"file": (name, data, ctype)}
    )


async def file_with_reasons(api: Api, case_id: str, reasons: dict[str, str]) -> dict[str, Any]:
    response = await api.post(f"/cases/{case_id}/file", json={"missing_reasons": reasons})
    assert response.status_code == 200, response.text
    return await wait_until(
        api,
        case_id,
        lambda b: b["status"] == "awaiting_decision" and b["details"]["package_id"],
        "was filed",
    )


# --- opening ------------------------------------------------------------------------------


async def test_opening_a_claim_is_201_and_a_repeat_returns_it_with_200(api: Api, sessions):
    body = claim(driver_id=None)
    await add_shipment(sessions, body["shipment_id"])

    response = await api.post("/cases/damage-claims", json=body)

    assert response.status_code == 201, response.text
    case_id = f"damage-claim-{body['shipment_id']}"
    assert response.headers["location"] == f"/cases/{case_id}"
    opened = response.json()
    assert opened["case_id"] == case_id and opened["type"] == "damage_claim"
    detail = await wait_until(
        api, case_id, lambda b: b["status"] == "gathering_evidence", "gathered"
    )
    event = datetime.fromisoformat(body["delivery_event_at"])
    assert datetime.fromisoformat(detail["deadline_at"]) == event + timedelta(hours=72)
    assert detail["overdue"] is False
    assert detail["details"]["depot_id"] == "ldn-1"  # the shipment's depot (no driver)
    assert detail["details"]["late"] is False and not detail["escalated"]
    assert set(detail["details"]["checklist"]) == {
        "attempt_record",
        "proof_of_delivery",
        "damage_photos",
        "customer_attestation",
        "proof_of_value",
    }
    assert {"documents", "file"} <= set(detail["allowed_actions"])

    again = await api.post("/cases/damage-claims", json={**body, "description": "again"})

    assert again.status_code == 200, again.text
    assert again.json()["case_id"] == case_id
    assert "location" not in again.headers


async def test_the_clients_claim_policy_sets_the_filing_window(api: Api, sessions):
    async with sessions() as session:
        client = await session.get(Client, CLIENT_ID)
        assert client is not None
        client.policy_overrides = {"damage_claim": {"filing_window": "PT48H"}}
        session.add(client)
        await session.commit()
    body = claim()

    response = await api.post("/cases/damage-claims", json=body)

    assert response.status_code == 201, response.text
    detail = await wait_until(
        api, response.json()["case_id"], lambda b: b["status"] == "gathering_evidence", "gathered"
    )
    event = datetime.fromisoformat(body["delivery_event_at"])
    assert datetime.fromisoformat(detail["deadline_at"]) == event + timedelta(hours=48)


async def test_the_customer_defaults_to_the_shipment_record(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)

    for _ in range(100):
        page = (await api.get("/messages", params={"case_id": case_id}, role="ops")).json()
        to_customer = [m for m in page["items"] if m["key"] == f"{case_id}/r1/request/customer"]
        if to_customer:
            break
        await asyncio.sleep(0.05)
    assert to_customer and to_customer[0]["recipient"]["email"] == "ada@example.com"


async def test_the_drivers_depot_takes_the_claim(api: Api, sessions):
    body = claim(driver_id=OTHER_DRIVER_ID)
    await add_shipment(sessions, body["shipment_id"])

    case_id = (await api.post("/cases/damage-claims", json=body)).json()["case_id"]

    detail = await wait_until(api, case_id, lambda b: b["details"], "opened")
    assert detail["details"]["depot_id"] == OTHER_DEPOT_ID


async def test_unknown_client_and_driver_are_422_and_start_nothing(api: Api, time_env):
    body = claim(client_id="nobody", driver_id="drv-nobody")

    response = await api.post("/cases/damage-claims", json=body)

    assert_problem(response, 422, "client_id", "driver_id")
    assert (await api.get(f"/cases/damage-claim-{body['shipment_id']}")).status_code == 404


async def test_without_a_shipment_record_the_driver_is_needed_for_the_depot(api: Api):
    response = await api.post("/cases/damage-claims", json=claim(driver_id=None))

    body = assert_problem(response, 422, "driver_id")
    assert "depot" in body["detail"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("shipment_id", "../etc"),
        ("declared_value", "0"),
        ("declared_value", "12.345"),
        ("currency", "gbp"),
        ("delivery_event_at", "2026-01-01T10:00:00"),
        ("claim_type", "stolen"),
    ],
)
async def test_invalid_fields_are_422(api: Api, field: str, value: str):
    assert_problem(await api.post("/cases/damage-claims", json=claim(**{field: value})), 422, field)


async def test_a_late_claim_is_opened_marked_late_and_escalated(api: Api, sessions):
    body = claim(delivery_event_at=(datetime.now(UTC) - timedelta(days=4)).isoformat())
    await add_shipment(sessions, body["shipment_id"])

    response = await api.post("/cases/damage-claims", json=body)

    assert response.status_code == 201, response.text
    detail = await wait_until(
        api,
        response.json()["case_id"],
        lambda b: b["escalated"] and b["status"] == "gathering_evidence",
        "was escalated",
    )
    assert detail["details"]["late"] is True
    assert detail["overdue"] is True
    assert "deadline" in detail["escalation_reason"]


# --- documents ----------------------------------------------------------------------------


async def test_an_uploaded_png_is_on_the_checklist_and_downloads_under_a_safe_name(
    api: Api, sessions
):
    case_id = await open_gathering_claim(api, sessions)
    image = png()

    response = await upload(
        api, case_id, "damage_photos", image, name="../../etc/\u202egnp.exe", ctype="text/html"
    )

    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["details"]["checklist"]["damage_photos"] == "present"
    added = [e for e in detail["timeline"] if e["kind"] == "document_added"]
    assert added[-1]["actor"] == "ops:ops-key"
    photos = [d for d in detail["documents"] if d["kind"] == "damage_photos"]
    assert len(photos) == 1 and {d["kind"] for d in detail["documents"]} >= {"attempt_record"}
    assert photos[0]["download_url"] == f"/cases/{case_id}/documents/{photos[0]['id']}"

    download = await api.get(photos[0]["download_url"])

    assert download.status_code == 200
    assert download.content == image
    assert download.headers["content-type"] == "image/png"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == 'attachment; filename="damage_photos.png"'


async def test_an_executable_declared_as_png_is_422_naming_file(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)

    response = await upload(api, case_id, "damage_photos", EXE, name="photo.png")

    assert_problem(response, 422, "file")
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["checklist"]["damage_photos"] == "missing"


async def test_a_file_the_kind_does_not_accept_is_422(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)

    response = await upload(api, case_id, "damage_photos", b"%PDF-1.4\n%%EOF\n", name="a.pdf")

    assert_problem(response, 422, "file")


async def test_missing_or_unknown_kind_and_missing_file_are_422(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)

    assert_problem(await upload(api, case_id, "selfie", png()), 422, "kind")
    no_file = await api.post(f"/cases/{case_id}/documents", data={"kind": "damage_photos"})
    assert_problem(no_file, 422, "file")


async def test_an_oversize_upload_is_413_before_it_is_read(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    big = png() + b"\x00" * MAX_UPLOAD

    assert_problem(await upload(api, case_id, "damage_photos", big), 413, "file")

    # Without a Content-Length (chunked), the stream is cut off at the limit.
    boundary = "casedesk-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\ndamage_photos\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    async def body():
        yield head
        for _ in range(4):
            yield b"\x00" * (MAX_UPLOAD // 2)
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {
        "Authorization": f"Bearer {api.keys['ops']}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    response = await api.raw.post(f"/cases/{case_id}/documents", content=body(), headers=headers)
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "file")
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["checklist"]["damage_photos"] == "missing"


async def test_documents_are_refused_with_409_on_a_failed_delivery_case(api: Api):
    case_id = (await api.open_case()).json()["case_id"]

    assert_problem(await upload(api, case_id, "damage_photos", png()), 409)
    assert_problem(await api.post(f"/cases/{case_id}/file", json={}), 409)


async def test_a_document_of_another_case_is_404(api: Api, sessions):
    first = await open_gathering_claim(api, sessions)
    second = await open_gathering_claim(api, sessions)
    document = (await api.get(f"/cases/{first}")).json()["documents"][0]

    assert_problem(await api.get(f"/cases/{second}/documents/{document['id']}"), 404)
    assert_problem(await api.get(f"/cases/{second}/documents/not-a-document"), 404)
    assert (await api.get(f"/cases/{first}/documents/{document['id']}")).status_code == 200


# --- filing and the decision --------------------------------------------------------------


async def test_filing_needs_a_reason_for_every_missing_item(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)

    response = await api.post(f"/cases/{case_id}/file", json={})

    assert_problem(response, 422, "missing_reasons")
    partial = {"damage_photos": "The driver left before taking photos."}
    assert_problem(
        await api.post(f"/cases/{case_id}/file", json={"missing_reasons": partial}),
        422,
        "missing_reasons",
    )
    assert (await api.get(f"/cases/{case_id}")).json()["status"] == "gathering_evidence"


async def test_filed_claim_lists_its_package_and_an_approval_closes_it_as_paid(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    assert (await upload(api, case_id, "damage_photos", png())).status_code == 200
    reasons = {k: v for k, v in REASONS.items() if k != "damage_photos"}

    filed = await file_with_reasons(api, case_id, reasons)

    assert filed["allowed_actions"].count("decision") == 1
    package = [d for d in filed["documents"] if d["kind"] == "claim_package"]
    assert len(package) == 1 and package[0]["id"] == filed["details"]["package_id"]
    download = await api.get(package[0]["download_url"])
    assert download.status_code == 200
    assert download.content.startswith(b"PK\x03\x04")
    assert download.headers["content-type"] == "application/zip"
    shipment = filed["business_key"]
    assert download.headers["content-disposition"] == (
        f'attachment; filename="claim-package-{shipment}.zip"'
    )
    assert_problem(await upload(api, case_id, "proof_of_value", png()), 409)

    no_amount = await api.post(f"/cases/{case_id}/decision", json={"decision": "approved"})
    assert_problem(no_amount, 422, "amount")

    approved = await api.post(
        f"/cases/{case_id}/decision", json={"decision": "approved", "amount": "120.00"}
    )

    assert approved.status_code == 200, approved.text
    closed = await wait_until(api, case_id, lambda b: b["status"] == "closed", "closed")
    assert closed["resolution"] == "paid"
    decision = [e for e in closed["timeline"] if e["kind"] == "decision"]
    assert decision[0]["actor"] == "ops:ops-key"


async def test_a_decision_before_filing_is_409(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)

    response = await api.post(
        f"/cases/{case_id}/decision", json={"decision": "denied", "reason": "No cover"}
    )

    assert_problem(response, 409)


async def test_more_information_sends_the_claim_back_to_gathering(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    await file_with_reasons(api, case_id, REASONS)

    response = await api.post(
        f"/cases/{case_id}/decision",
        json={"decision": "more_information", "reason": "Photos?", "requested": ["damage_photos"]},
    )

    assert response.status_code == 200, response.text
    again = await wait_until(
        api,
        case_id,
        lambda b: b["status"] == "gathering_evidence" and b["details"]["round"] == 2,
        "went back to gathering",
    )
    assert again["details"]["package_id"] is None
    assert "documents" in again["allowed_actions"]


async def test_opening_a_claim_needs_the_ops_role(api: Api):
    assert_problem(await api.post("/cases/damage-claims", json=claim(), role="viewer"), 403)
