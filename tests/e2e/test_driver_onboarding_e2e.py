"""End to end for driver onboarding: a real Temporal dev server, the real worker and the real
API on a local port, a migrated and seeded SQLite database. Ops open the onboarding over
HTTP; the driver uploads every document through the link in the stored welcome email; ops
reject one (the driver sends it again through the link in the rejection email) and approve
the rest; the driver becomes active and the compliance watch starts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from core.bootstrap import DEMO_DEPOT_ID
from tests.e2e.stack import case_when, link_in, message_when
from tests.e2e.test_damage_claim_e2e import PDF

pytestmark = pytest.mark.e2e

EXPIRING = {"driving_licence", "proof_of_insurance", "vehicle_registration"}


async def _in_review(http: httpx.AsyncClient, case_id: str, count: int) -> list[dict]:
    """The checklist items in review once `count` of them are."""
    for _ in range(150):
        case = (await http.get(f"/cases/{case_id}")).json()
        waiting = [i for i in case["details"]["checklist"] if i["status"] == "in_review"]
        if len(waiting) >= count:
            return waiting
        await asyncio.sleep(0.1)
    raise AssertionError(f"{case_id} never had {count} documents in review")


async def test_a_driver_is_onboarded_through_the_link_and_becomes_active(stack) -> None:
    http, env = stack
    start = (datetime.now(UTC) + timedelta(days=7)).date()
    opened = await http.post(
        "/cases/driver-onboardings",
        json={
            "name": "Dee Driver",
            "email": "dee.driver@example.com",
            "depot_id": DEMO_DEPOT_ID,
            "vehicle_type": "van",
            "planned_start_date": start.isoformat(),
        },
    )
    assert opened.status_code == 201, opened.text
    case = opened.json()
    case_id, driver_id = case["case_id"], case["business_key"]
    assert case_id == f"driver-onboarding-{driver_id}" and "dee" not in driver_id.lower()
    assert case["deadline_at"] and case["next_step"]
    case = await case_when(http, case_id, "collecting_documents")  # the checklist, live

    welcome = await message_when(http, case_id, "onboarding/welcome")
    link = link_in(welcome)
    async with httpx.AsyncClient(timeout=30) as driver:
        page = await driver.get(link)
        assert page.status_code == 200 and 'type="file"' in page.text
        kinds = [item["kind"] for item in case["details"]["checklist"]]
        assert len(kinds) == 6
        for kind in kinds:
            sent = await driver.post(
                link, data={"kind": kind}, files={"file": (f"{kind}.pdf", PDF, "application/pdf")}
            )
            assert sent.status_code == 200, sent.text

    waiting = await _in_review(http, case_id, 6)
    by_kind = {item["kind"]: item["document"]["id"] for item in waiting}
    rejected = await http.post(
        f"/cases/{case_id}/documents/{by_kind['tax_form']}/review",
        json={"decision": "rejected", "reason": "The form is not signed"},
    )
    assert rejected.status_code == 200, rejected.text
    expires = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    for kind, document_id in by_kind.items():
        if kind == "tax_form":
            continue
        body = {"decision": "approved"} | ({"expires_on": expires} if kind in EXPIRING else {})
        reviewed = await http.post(f"/cases/{case_id}/documents/{document_id}/review", json=body)
        assert reviewed.status_code == 200, reviewed.text

    # The driver sends the tax form again through the link in the rejection email.
    rejection = await message_when(http, case_id, "onboarding/document_rejected")
    assert "not signed" in rejection["text_body"]
    async with httpx.AsyncClient(timeout=30) as driver:
        again = await driver.post(
            link_in(rejection),
            data={"kind": "tax_form"},
            files={"file": ("tax.pdf", PDF, "application/pdf")},
        )
        assert again.status_code == 200, again.text
    (resent,) = await _in_review(http, case_id, 1)
    approved = await http.post(
        f"/cases/{case_id}/documents/{resent['document']['id']}/review",
        json={"decision": "approved"},
    )
    assert approved.status_code == 200, approved.text

    closed = await case_when(http, case_id, "closed")
    assert closed["resolution"] == "activated"
    driver_record = (await http.get(f"/drivers/{driver_id}")).json()
    assert driver_record["status"] == "active"
    await message_when(http, case_id, "onboarding/first_day")
    await message_when(http, case_id, "onboarding/dispatcher_ready")
    watch = await case_when(http, f"driver-compliance-{driver_id}", "monitoring")
    assert {d["kind"] for d in watch["details"]["documents"]} == EXPIRING
    result = await asyncio.wait_for(env.client.get_workflow_handle(case_id).result(), 30)
    assert result["resolution"] == "activated"
