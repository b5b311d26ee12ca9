"""Driver onboarding over HTTP: opening (201 with the deadline and the first step, 200 for
the same driver, 422 naming the field, 409 for a driver past onboarding), documents uploaded
by ops, reviews (approve with an expiry date, reject with a reason) and activation."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from core.db import SessionFactory
from schemas.tables import Depot, Driver
from tests.api.claims import EXE, open_gathering_claim, png, wait_until
from tests.api.conftest import DEPOT_ID, DRIVER_ID, Api, assert_problem
from tests.api.drivers import (
    CARGO_BIKE_ITEMS,
    activate,
    add_coordinator,
    approve,
    driver,
    item,
    message_link,
    onboarding,
    open_onboarding,
    today,
    upload,
    uploaded,
)


@pytest.fixture(autouse=True)
async def coordinator(sessions: SessionFactory) -> None:
    await add_coordinator(sessions)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- opening ----------------------------------------------------------------------------------


async def test_opening_is_201_with_the_abandonment_deadline_and_the_first_reminder(api: Api):
    response = await api.post("/cases/driver-onboardings", json=onboarding())

    assert response.status_code == 201, response.text
    opened = response.json()
    assert opened["type"] == "driver_onboarding" and opened["client_id"] is None
    assert opened["depot_id"] == DEPOT_ID
    assert at(opened["deadline_at"]) == at(opened["opened_at"]) + timedelta(days=30)
    assert opened["next_step"].startswith("remind the driver")
    assert at(opened["next_step_at"]) == at(opened["opened_at"]) + timedelta(hours=48)
    assert response.headers["location"] == f"/cases/{opened['case_id']}"


async def test_a_generated_driver_id_says_nothing_about_the_driver(api: Api):
    opened = (await api.post("/cases/driver-onboardings", json=onboarding())).json()

    driver_id = opened["business_key"]
    assert re.fullmatch(r"drv-[0-9a-f]{12}", driver_id), driver_id
    assert opened["case_id"] == f"driver-onboarding-{driver_id}"
    for personal in ("Olu", "Newdriver", "olu@example.com", "7700"):
        assert personal not in opened["case_id"] and personal not in opened["subject"]


async def test_the_driver_record_is_created_onboarding(api: Api):
    body = onboarding(driver_id="drv-new-1", vehicle_type="van")
    await api.post("/cases/driver-onboardings", json=body)

    record = (await api.get("/drivers/drv-new-1")).json()

    assert record["status"] == "onboarding"
    assert record["depot_id"] == DEPOT_ID and record["vehicle_type"] == "van"
    assert record["planned_start_date"] == body["planned_start_date"]
    assert record["name"] == "Olu Newdriver" and record["email"] == "olu@example.com"


async def test_the_same_driver_again_is_200_with_the_open_case(api: Api):
    body = onboarding(driver_id="drv-twice")
    first = await api.post("/cases/driver-onboardings", json=body)

    again = await api.post("/cases/driver-onboardings", json=body)

    assert first.status_code == 201 and again.status_code == 200, again.text
    assert again.json()["case_id"] == first.json()["case_id"] == "driver-onboarding-drv-twice"


async def test_a_driver_past_onboarding_is_409_and_starts_nothing(api: Api, sessions):
    problem = assert_problem(
        await api.post("/cases/driver-onboardings", json=onboarding(driver_id=DRIVER_ID)), 409
    )

    assert DRIVER_ID in problem["detail"] and "active" in problem["detail"]
    assert_problem(await api.get(f"/cases/driver-onboarding-{DRIVER_ID}"), 404)
    async with sessions() as session:
        record = await session.get(Driver, DRIVER_ID)
        assert record is not None and record.status.value == "active"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"depot_id": "atlantis"}, "depot_id"),
        ({"planned_start_date": str(date.today() - timedelta(days=2))}, "planned_start_date"),
        ({"email": "not-an-email"}, "email"),
        ({"driver_id": "olu@example.com"}, "driver_id"),
        ({"vehicle_type": "horse"}, "vehicle_type"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_creates_nothing(
    api: Api, sessions, changes: dict[str, str], field: str
):
    body = onboarding(**{"driver_id": "drv-bad", **changes})

    assert_problem(await api.post("/cases/driver-onboardings", json=body), 422, field)
    assert_problem(await api.get("/drivers/drv-bad"), 404)
    assert_problem(await api.get("/cases/driver-onboarding-drv-bad"), 404)


async def test_opening_needs_the_ops_role(api: Api):
    response = await api.post("/cases/driver-onboardings", json=onboarding(), role="viewer")

    assert_problem(response, 403)


# --- the checklist ----------------------------------------------------------------------------


async def test_a_cargo_bike_needs_no_vehicle_registration(api: Api):
    detail = await open_onboarding(api)

    kinds = [entry["kind"] for entry in detail["details"]["checklist"]]
    assert kinds == CARGO_BIKE_ITEMS
    assert {entry["status"] for entry in detail["details"]["checklist"]} == {"requested"}


async def test_the_depots_own_item_is_on_the_checklist(api: Api, sessions):
    async with sessions() as session:
        depot = await session.get(Depot, DEPOT_ID)
        assert depot is not None
        extra = {"depot_changes": {"add": ["right_to_work"]}}
        depot.policy_overrides = {"driver_onboarding": extra}
        session.add(depot)
        await session.commit()

    detail = await open_onboarding(api, vehicle_type="van")

    kinds = [entry["kind"] for entry in detail["details"]["checklist"]]
    assert "vehicle_registration" in kinds and kinds[-1] == "right_to_work"


# --- documents --------------------------------------------------------------------------------


async def test_an_upload_waits_for_review_and_downloads(api: Api):
    case_id = (await open_onboarding(api))["case_id"]
    image = png()

    response = await upload(api, case_id, "driving_licence", image)

    assert response.status_code == 200, response.text
    detail = response.json()
    licence = item(detail, "driving_licence")
    assert licence["status"] == "in_review"
    added = [e for e in detail["timeline"] if e["kind"] == "document_added"]
    assert added[-1]["actor"] == "ops:ops-key"
    listed = [d for d in detail["documents"] if d["id"] == licence["document"]["id"]]
    assert listed and listed[0]["kind"] == "driving_licence"
    download = await api.get(listed[0]["download_url"])
    assert download.status_code == 200 and download.content == image
    assert download.headers["content-disposition"] == 'attachment; filename="driving_licence.png"'


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("vehicle_registration", 422),  # a driver kind this cargo-bike driver is not asked for
        ("damage_photos", 422),  # a claim's kind
        ("selfie", 422),
    ],
)
async def test_a_kind_the_case_does_not_ask_for_is_422_naming_kind(
    api: Api, kind: str, status: int
):
    case_id = (await open_onboarding(api))["case_id"]

    assert_problem(await upload(api, case_id, kind), status, "kind")


async def test_bytes_the_kind_does_not_accept_are_422_naming_file(api: Api):
    case_id = (await open_onboarding(api))["case_id"]

    assert_problem(await upload(api, case_id, "tax_form", EXE), 422, "file")
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert item(detail, "tax_form")["status"] == "requested"


async def test_a_second_upload_while_in_review_is_409(api: Api):
    case_id = (await open_onboarding(api))["case_id"]
    await uploaded(api, case_id, "tax_form")

    # Another file (the same one again is the document already held: stored once, 200).
    assert_problem(await upload(api, case_id, "tax_form", png(shade=64)), 409)


# --- reviews ----------------------------------------------------------------------------------


async def test_approving_an_expiring_document_needs_its_expiry_date(api: Api, time_env):
    case_id = (await open_onboarding(api))["case_id"]
    document_id = await uploaded(api, case_id, "driving_licence")
    soon = await today(time_env) + timedelta(days=10)

    assert_problem(await approve(api, case_id, document_id), 422, "expires_on")
    assert_problem(await approve(api, case_id, document_id, soon), 422, "expires_on")
    past = await today(time_env) - timedelta(days=1)
    assert_problem(await approve(api, case_id, document_id, past), 422, "expires_on")

    expires_on = await today(time_env) + timedelta(days=365)
    response = await approve(api, case_id, document_id, expires_on)

    assert response.status_code == 200, response.text
    licence = item(response.json(), "driving_licence")
    assert licence["status"] == "approved" and licence["expires_on"] == expires_on.isoformat()


async def test_a_document_that_does_not_expire_is_approved_without_a_date(api: Api):
    case_id = (await open_onboarding(api))["case_id"]
    document_id = await uploaded(api, case_id, "contractor_agreement")

    response = await approve(api, case_id, document_id)

    assert response.status_code == 200, response.text
    assert item(response.json(), "contractor_agreement")["status"] == "approved"


async def test_a_rejection_needs_a_reason_and_asks_the_driver_again(api: Api):
    case_id = (await open_onboarding(api))["case_id"]
    document_id = await uploaded(api, case_id, "tax_form")
    path = f"/cases/{case_id}/documents/{document_id}/review"

    assert_problem(await api.post(path, json={"decision": "rejected"}), 422, "reason")
    response = await api.post(path, json={"decision": "rejected", "reason": "Unsigned."})

    assert response.status_code == 200, response.text
    tax_form = item(response.json(), "tax_form")
    assert tax_form["status"] == "requested" and tax_form["rejected_reason"] == "Unsigned."
    link = await message_link(api, case_id, f"rejected-{document_id}")
    assert link.startswith("/r/")


async def test_reviewing_a_document_not_in_review_is_409(api: Api):
    case_id = (await open_onboarding(api))["case_id"]
    path = f"/cases/{case_id}/documents/not-a-document/review"

    assert_problem(await api.post(path, json={"decision": "approved"}), 409)


async def test_a_claim_has_no_reviews(api: Api, sessions):
    case_id = await open_gathering_claim(api, sessions)
    document = (await api.get(f"/cases/{case_id}")).json()["documents"][0]
    path = f"/cases/{case_id}/documents/{document['id']}/review"

    problem = assert_problem(await api.post(path, json={"decision": "approved"}), 409)

    assert "damage_claim" in problem["detail"] and "'review'" in problem["detail"]


async def test_reviews_need_the_ops_role(api: Api):
    case_id = (await open_onboarding(api))["case_id"]
    document_id = await uploaded(api, case_id, "tax_form")
    path = f"/cases/{case_id}/documents/{document_id}/review"

    assert_problem(await api.post(path, json={"decision": "approved"}, role="viewer"), 403)


# --- activation -------------------------------------------------------------------------------


async def test_every_approval_activates_the_driver_and_starts_the_watch(api: Api, time_env):
    detail = await open_onboarding(api)
    case_id, driver_id = detail["case_id"], detail["business_key"]
    expires_on = await today(time_env) + timedelta(days=200)

    closed = await activate(api, case_id, expires_on=expires_on)

    watch_id = f"driver-compliance-{driver_id}"
    assert closed["status"] == "closed" and closed["details"]["compliance_case_id"] == watch_id
    record: dict[str, Any] = await driver(
        api,
        driver_id,
        lambda b: b["status"] == "active" and (b["open_case"] or {}).get("case_id") == watch_id,
        "became active with its watch",
    )
    assert record["open_case"]["type"] == "driver_compliance"
    assert record["open_case"]["status"] == "monitoring"
    assert {d["kind"] for d in record["documents"]} == set(CARGO_BIKE_ITEMS)
    assert {d["status"] for d in record["documents"]} == {"approved"}
    expiries = {d["kind"]: d["expires_on"] for d in record["documents"]}
    assert expiries["driving_licence"] == expiries["proof_of_insurance"] == expires_on.isoformat()
    assert expiries["tax_form"] is None
    assert {c["case_id"] for c in record["cases"]} == {case_id, watch_id}
    watch = await wait_until(api, watch_id, lambda b: b["status"] == "monitoring", "watched")
    assert {d["kind"] for d in watch["details"]["documents"]} == {
        "driving_licence",
        "proof_of_insurance",
    }
    messages = (await api.get("/messages", params={"case_id": case_id}, role="ops")).json()
    keys = {m["key"] for m in messages["items"]}
    assert {f"{case_id}/first-day", f"{case_id}/dispatcher-ready"} <= keys


async def test_the_drivers_documents_download_from_the_watch(api: Api, time_env):
    detail = await open_onboarding(api)
    expires_on = await today(time_env) + timedelta(days=200)
    await activate(api, detail["case_id"], expires_on=expires_on)
    watch_id = f"driver-compliance-{detail['business_key']}"
    watch = await wait_until(api, watch_id, lambda b: len(b["documents"]) == 2, "listed")

    for document in watch["documents"]:
        response = await api.get(document["download_url"])

        assert response.status_code == 200 and response.content == png()
