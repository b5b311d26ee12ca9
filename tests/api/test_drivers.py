"""The driver resource: `GET /drivers/{id}` (record, documents, open case), `GET /drivers`
(status, depot, expiring_before) and `POST /drivers/{id}/offboard`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from core.db import SessionFactory
from tests.api.claims import wait_until
from tests.api.conftest import DRIVER_ID, OTHER_DEPOT_ID, OTHER_DRIVER_ID, Api, assert_problem
from tests.api.drivers import activate, add_coordinator, driver, open_onboarding, today

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
async def coordinator(sessions: SessionFactory) -> None:
    await add_coordinator(sessions)


async def active_driver(api: Api, env: WorkflowEnvironment, valid_days: int = 200) -> str:
    """A driver onboarded over HTTP: active, watched, documents valid for `valid_days`."""
    detail = await open_onboarding(api)
    driver_id: str = detail["business_key"]
    await activate(api, detail["case_id"], expires_on=await today(env) + valid_days * DAY)
    await driver(api, driver_id, lambda b: b["status"] == "active", "became active")
    return driver_id


def ids(page: dict) -> set[str]:
    return {d["id"] for d in page["items"]}


async def test_an_onboarding_driver_shows_the_open_case_and_no_documents_yet(api: Api):
    detail = await open_onboarding(api)

    record = (await api.get(f"/drivers/{detail['business_key']}")).json()

    assert record["status"] == "onboarding" and record["documents"] == []
    assert record["open_case"]["case_id"] == detail["case_id"]
    assert record["open_case"]["status"] == "collecting_documents"


async def test_a_driver_without_cases_shows_none(api: Api):
    record = (await api.get(f"/drivers/{DRIVER_ID}")).json()

    assert record["status"] == "active" and record["open_case"] is None and record["cases"] == []


async def test_the_list_filters_by_status_and_depot(api: Api):
    onboarding = (await open_onboarding(api))["business_key"]

    by_status = (await api.get("/drivers", params={"status": "onboarding"})).json()
    by_depot = (await api.get("/drivers", params={"depot_id": OTHER_DEPOT_ID})).json()

    assert ids(by_status) == {onboarding}
    assert ids(by_depot) == {OTHER_DRIVER_ID}
    assert_problem(await api.get("/drivers", params={"status": "asleep"}), 422, "status")


async def test_expiring_before_lists_drivers_with_an_approved_document_expiring(
    api: Api, time_env: WorkflowEnvironment
):
    driver_id = await active_driver(api, time_env, valid_days=60)
    day = await today(time_env)

    soon = (await api.get("/drivers", params={"expiring_before": str(day + 61 * DAY)})).json()
    later = (await api.get("/drivers", params={"expiring_before": str(day + 60 * DAY)})).json()

    assert ids(soon) == {driver_id}
    assert ids(later) == set()  # valid through its expiry date
    assert_problem(await api.get("/drivers", params={"expiring_before": "soon"}), 422)


async def test_offboarding_an_active_driver_ends_the_watch(api: Api, time_env: WorkflowEnvironment):
    driver_id = await active_driver(api, time_env)
    watch_id = f"driver-compliance-{driver_id}"
    await wait_until(api, watch_id, lambda b: b["status"] == "monitoring", "watched")

    response = await api.post(f"/drivers/{driver_id}/offboard", json={"reason": "Moved away."})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "offboarded"
    watch = await wait_until(api, watch_id, lambda b: b["status"] == "closed", "closed")
    assert watch["resolution"] == "offboarded"
    after = await driver(api, driver_id, lambda b: b["open_case"] is None, "had no open case")
    assert after["status"] == "offboarded"


async def test_offboarding_during_onboarding_withdraws_the_case(api: Api):
    detail = await open_onboarding(api)
    driver_id = detail["business_key"]

    response = await api.post(f"/drivers/{driver_id}/offboard", json={"reason": "Changed mind."})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "offboarded"
    closed = await wait_until(api, detail["case_id"], lambda b: b["status"] == "closed", "closed")
    assert closed["resolution"] == "withdrawn"
    assert "Changed mind." in closed["timeline"][-1]["summary"]


async def test_offboarding_a_driver_without_cases_sets_the_record(api: Api):
    response = await api.post(f"/drivers/{DRIVER_ID}/offboard", json={"reason": "Retired."})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "offboarded"


async def test_offboarding_twice_is_409_and_an_unknown_driver_404(api: Api):
    await api.post(f"/drivers/{DRIVER_ID}/offboard", json={"reason": "Retired."})

    again = await api.post(f"/drivers/{DRIVER_ID}/offboard", json={"reason": "Retired."})

    assert "already offboarded" in assert_problem(again, 409)["detail"]
    assert_problem(await api.post("/drivers/ghost/offboard", json={"reason": "x"}), 404)
    assert_problem(await api.post(f"/drivers/{OTHER_DRIVER_ID}/offboard", json={}), 422, "reason")


async def test_offboarding_needs_the_ops_role(api: Api):
    response = await api.post(
        f"/drivers/{DRIVER_ID}/offboard", json={"reason": "Retired."}, role="viewer"
    )

    assert_problem(response, 403)
