"""Helpers for the driver tests: an onboarding to open, the driver's link from a stored email,
uploads and reviews over HTTP, a driver taken all the way to active."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, date, timedelta
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from core.db import SessionFactory
from schemas.tables import TeamContact, TeamRole
from tests.api.claims import png, wait_until
from tests.api.conftest import DEPOT_ID, Api

LINK = re.compile(r"http://testserver(/r/[A-Za-z0-9_.\-]+)")
# A cargo bike needs no vehicle registration: five documents, two of which expire.
CARGO_BIKE_ITEMS = [
    "driving_licence",
    "proof_of_insurance",
    "background_check_consent",
    "contractor_agreement",
    "tax_form",
]
EXPIRING = {"driving_licence", "proof_of_insurance", "vehicle_registration"}


async def add_coordinator(sessions: SessionFactory) -> None:
    """The onboarding coordinator the driver cases escalate to."""
    async with sessions() as session:
        session.add(
            TeamContact(
                role=TeamRole.ONBOARDING_COORDINATOR,
                name="Cora Coordinator",
                email="onboarding@example.com",
            )
        )
        await session.commit()


async def today(env: WorkflowEnvironment) -> date:
    """Today (UTC) on the clock the API and the workflows share: the time-skipping server's."""
    return (await env.get_current_time()).astimezone(UTC).date()


def onboarding(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Olu Newdriver",
        "email": "olu@example.com",
        "phone": "+44 7700 900123",
        "depot_id": DEPOT_ID,
        "vehicle_type": "cargo_bike",
        "planned_start_date": (date.today() + timedelta(days=14)).isoformat(),
    }
    body.update(fields)
    return body


async def open_onboarding(api: Api, **fields: Any) -> dict[str, Any]:
    """An onboarding case waiting for the driver's documents (its detail)."""
    response = await api.post("/cases/driver-onboardings", json=onboarding(**fields))
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]
    return await wait_until(
        api, case_id, lambda b: b["status"] == "collecting_documents", "collected documents"
    )


async def message_link(api: Api, case_id: str, key: str) -> str:
    """The /r/ link in the stored message `{case_id}/{key}` (only ops see links)."""
    for _ in range(300):
        page = (await api.get("/messages", params={"case_id": case_id}, role="ops")).json()
        for message in page["items"]:
            if message["key"] == f"{case_id}/{key}":
                match = LINK.search(message["text_body"])
                assert match, message["text_body"]
                return match.group(1)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message {key} stored for {case_id}")


async def upload(api: Api, case_id: str, kind: str, data: bytes | None = None) -> httpx.Response:
    return await api.post(
        f"/cases/{case_id}/documents",
        data={"kind": kind},
        files={"file": ("scan.png", data or png(), "image/png")},
    )


def item(detail: dict[str, Any], kind: str) -> dict[str, Any]:
    """The checklist item (onboarding) or renewal (compliance) of `kind`."""
    items = detail["details"].get("checklist") or detail["details"].get("renewals") or []
    found = [i for i in items if i["kind"] == kind]
    assert found, (kind, items)
    return found[0]


async def uploaded(api: Api, case_id: str, kind: str) -> str:
    """Upload `kind` as ops; the id of the document now in review."""
    response = await upload(api, case_id, kind)
    assert response.status_code == 200, response.text
    entry = item(response.json(), kind)
    assert entry["status"] == "in_review", entry
    return str(entry["document"]["id"])


async def approve(
    api: Api, case_id: str, document_id: str, expires_on: date | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"decision": "approved"}
    if expires_on is not None:
        body["expires_on"] = expires_on.isoformat()
    return await api.post(f"/cases/{case_id}/documents/{document_id}/review", json=body)


async def activate(api: Api, case_id: str, *, expires_on: date) -> dict[str, Any]:
    """Upload and approve every item (expiring ones until `expires_on`); the closed case."""
    detail = (await api.get(f"/cases/{case_id}")).json()
    for entry in detail["details"]["checklist"]:
        document_id = await uploaded(api, case_id, entry["kind"])
        expiry = expires_on if entry["kind"] in EXPIRING else None
        response = await approve(api, case_id, document_id, expiry)
        assert response.status_code == 200, response.text
    return await wait_until(
        api, case_id, lambda b: b["resolution"] == "activated", "activated the driver"
    )


async def driver(
    api: Api, driver_id: str, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """`GET /drivers/{id}` once `check(body)` holds (the driver cases write the record)."""
    return await api.poll(f"/drivers/{driver_id}", check, what)
