"""The stuck-case radar, `GET /cases/stuck`, on what the workflows record: a silent customer
past the window, a passed deadline, an escalation nobody picked up, no progress. Each is made
to happen by a real case on the time-skipping server, seen listed with its reason, and seen
unlisted once a person acts. (Temporal's own reasons: test_stuck_temporal.py.)"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from typing import Any

from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from tests.api.conftest import Api, assert_problem, failed_delivery
from tests.api.test_console import NewBrowser, browser  # noqa: F401  (fixture)

HOUR = timedelta(hours=1)
NEIGHBOUR = {"option": "neighbour", "neighbour_name": "Bob", "neighbour_address": "3 Main St"}


async def _waiting_case(api: Api, **fields: Any) -> str:
    response = await api.post("/cases/failed-deliveries", json=failed_delivery(**fields))
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")
    return case_id


async def _booked_case(api: Api) -> dict[str, Any]:
    case_id = await _waiting_case(api)
    assert (await api.post(f"/cases/{case_id}/redelivery", json=NEIGHBOUR)).status_code == 200
    return await api.wait_for(case_id, "redelivery_scheduled")


def _entry(body: dict[str, Any], case_id: str) -> dict[str, Any] | None:
    return next((item for item in body["items"] if item["case_id"] == case_id), None)


def _kinds(body: dict[str, Any], case_id: str) -> set[str]:
    entry = _entry(body, case_id)
    return {reason["kind"] for reason in entry["reasons"]} if entry else set()


async def _listed(api: Api, case_id: str, kind: str) -> dict[str, Any]:
    """Poll the radar until the case is listed for `kind`; its entry."""
    body = await api.poll(
        "/cases/stuck", lambda b: kind in _kinds(b, case_id), f"listed {case_id} for {kind}"
    )
    entry = _entry(body, case_id)
    assert entry is not None
    return entry


async def _unlisted(api: Api, case_id: str, kind: str) -> dict[str, Any]:
    return await api.poll(
        "/cases/stuck",
        lambda b: kind not in _kinds(b, case_id),
        f"unlisted {case_id} for {kind}",
    )


def _reason(entry: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for r in entry["reasons"] if r["kind"] == kind)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_case_that_is_moving_is_not_listed(api: Api):
    case_id = await _waiting_case(api)

    body = (await api.get("/cases/stuck")).json()

    assert _entry(body, case_id) is None
    assert body["total"] == 0 and body["live"] is True and body["unchecked"] == 0
    assert body["checked"] == 1


async def test_a_silent_customer_is_listed_past_the_window_until_someone_answers(
    api: Api, time_env: WorkflowEnvironment
):
    case_id = await _waiting_case(api)
    waiting_since = _at(
        next(
            e["at"]
            for e in (await api.get(f"/cases/{case_id}")).json()["timeline"]
            if e["kind"] == "status" and e["data"].get("status") == "waiting_on_customer"
        )
    )
    await time_env.sleep(47 * HOUR)  # inside the 48 h window: not yet
    assert "waiting_past_window" not in _kinds((await api.get("/cases/stuck")).json(), case_id)

    await time_env.sleep(2 * HOUR)
    entry = await _listed(api, case_id, "waiting_past_window")

    reason = _reason(entry, "waiting_past_window")
    assert _at(reason["since"]) == waiting_since
    assert "the customer" in reason["reason"] and "window 2 d" in reason["reason"]
    assert entry["links"]["case"] == f"/cases/{case_id}"
    assert entry["links"]["console"] == f"/console/cases/{case_id}"
    assert entry["links"]["temporal"].endswith(f"/workflows/{case_id}")
    assert entry["since"] == min(r["since"] for r in entry["reasons"])

    assert (await api.post(f"/cases/{case_id}/redelivery", json=NEIGHBOUR)).status_code == 200
    await _unlisted(api, case_id, "waiting_past_window")


async def test_an_escalated_case_nobody_is_assigned_is_listed_until_assigned(api: Api):
    case_id = await _waiting_case(api)
    escalated = await api.post(f"/cases/{case_id}/escalate", json={"reason": "Customer called"})
    assert escalated.status_code == 200, escalated.text

    entry = await _listed(api, case_id, "escalated_unassigned")

    reason = _reason(entry, "escalated_unassigned")
    assert "Customer called" in reason["reason"] and "nobody assigned" in reason["reason"]
    escalation = next(e for e in escalated.json()["timeline"] if e["kind"] == "escalated")
    assert _at(reason["since"]) == _at(escalation["at"])
    filtered = (await api.get("/cases/stuck", params={"kind": "escalated_unassigned"})).json()
    assert [item["case_id"] for item in filtered["items"]] == [case_id]

    assigned = await api.post(f"/cases/{case_id}/assign", json={"assignee": "sam"})
    assert assigned.status_code == 200, assigned.text
    body = await _unlisted(api, case_id, "escalated_unassigned")
    assert _entry(body, case_id) is None


async def test_a_passed_deadline_is_listed_until_the_case_closes(
    api: Api, time_env: WorkflowEnvironment
):
    booked = await _booked_case(api)
    case_id, deadline = booked["case_id"], _at(booked["deadline_at"])
    assert "deadline_passed" not in _kinds((await api.get("/cases/stuck")).json(), case_id)

    # Past the expected delivery, inside the outcome's 24 h grace (no escalation yet).
    await time_env.sleep(deadline - await time_env.get_current_time() + HOUR)
    entry = await _listed(api, case_id, "deadline_passed")

    assert _at(_reason(entry, "deadline_passed")["since"]) == deadline
    assert {r["kind"] for r in entry["reasons"]} == {"deadline_passed"}
    outcome = {"outcome": "delivered", "attempted_at": deadline.isoformat()}
    assert (await api.post(f"/cases/{case_id}/delivery-outcome", json=outcome)).status_code == 200
    await api.wait_for(case_id, "closed")
    body = await _unlisted(api, case_id, "deadline_passed")
    assert _entry(body, case_id) is None


async def test_a_case_with_no_progress_and_nothing_scheduled_is_listed(
    api: Api, time_env: WorkflowEnvironment
):
    booked = await _booked_case(api)
    case_id, deadline = booked["case_id"], _at(booked["deadline_at"])
    # The outcome never comes: escalated after the 24 h grace, then nothing is scheduled.
    await time_env.sleep(deadline - await time_env.get_current_time() + 25 * HOUR)
    escalated = await api.poll(
        f"/cases/{case_id}", lambda b: b["escalated"] and b["next_step"] is None, "escalated"
    )
    assert "no_progress" not in _kinds((await api.get("/cases/stuck")).json(), case_id)

    await time_env.sleep(25 * HOUR)
    entry = await _listed(api, case_id, "no_progress")

    reason = _reason(entry, "no_progress")
    last_event = max(_at(e["at"]) for e in escalated["timeline"])
    assert _at(reason["since"]) == last_event
    assert "nothing is scheduled" in reason["reason"]
    outcome = {"outcome": "delivered", "attempted_at": deadline.isoformat()}
    assert (await api.post(f"/cases/{case_id}/delivery-outcome", json=outcome)).status_code == 200
    await api.wait_for(case_id, "closed")
    assert _entry(await _unlisted(api, case_id, "no_progress"), case_id) is None


async def test_an_open_case_whose_workflow_was_terminated_is_listed(
    api: Api, time_env: WorkflowEnvironment
):
    case_id = await _waiting_case(api)
    handle = time_env.client.get_workflow_handle(case_id)

    await handle.terminate(reason="radar test")
    entry = await _listed(api, case_id, "workflow_not_running")

    reason = _reason(entry, "workflow_not_running")
    assert "terminated" in reason["reason"] and "waiting_on_customer" in reason["reason"]
    assert _at(reason["since"]) == (await handle.describe()).close_time
    assert entry["status"] == "waiting_on_customer"  # the index still says open


async def test_the_radar_is_oldest_first_and_filters_by_type_client_and_depot(
    api: Api, time_env: WorkflowEnvironment
):
    first = await _waiting_case(api)
    await time_env.sleep(HOUR)
    second = await _waiting_case(api, driver_id="drv-9")  # depot nyc-1
    for case_id in (second, first):  # escalated in the other order: since is the escalation
        await api.post(f"/cases/{case_id}/escalate", json={"reason": "check"})
        await _listed(api, case_id, "escalated_unassigned")
        await time_env.sleep(HOUR)

    body = (await api.get("/cases/stuck")).json()
    assert [item["case_id"] for item in body["items"]] == [second, first]
    assert body["total"] == 2

    async def listed(**params: str) -> list[str]:
        body = (await api.get("/cases/stuck", params=params)).json()
        return [item["case_id"] for item in body["items"]]

    assert await listed(client_id="acme") == [second, first]
    assert await listed(client_id="globex") == []
    assert await listed(type="damage_claim") == []
    assert await listed(type="failed_delivery") == [second, first]
    assert await listed(depot_id="nyc-1") == [second]
    assert await listed(depot_id="ldn-1") == [first]
    assert await listed(kind="deadline_passed") == []
    page = (await api.get("/cases/stuck", params={"limit": 1, "offset": 1})).json()
    assert [i["case_id"] for i in page["items"]] == [first] and page["total"] == 2


async def test_the_radar_refuses_an_unknown_kind_and_needs_a_key(api: Api):
    assert_problem(await api.get("/cases/stuck", params={"kind": "bored"}), 422, "kind")
    assert_problem(await api.get("/cases/stuck", params={"type": "parcel"}), 422, "type")
    assert (await api.get("/cases/stuck", role=None)).status_code == 401


async def test_case_types_publish_each_types_stuck_policy(api: Api):
    types = {t["type"]: t for t in (await api.get("/case-types")).json()}

    failed = types["failed_delivery"]["stuck_policy"]
    assert failed["activity_attempts"] == 3
    assert failed["no_progress_after"] == "P1D"
    assert failed["waiting_windows"]["waiting_on_customer"] == "P2D"
    assert types["unpaid_invoice"]["stuck_policy"]["no_progress_after"] == "P7D"


async def test_the_console_lists_stuck_cases_with_links_to_the_case_and_temporal(
    api: Api,
    browser: NewBrowser,  # noqa: F811
    settings: Settings,
):
    case_id = await _waiting_case(api)
    await api.post(f"/cases/{case_id}/escalate", json={"reason": "Customer called"})
    await _listed(api, case_id, "escalated_unassigned")
    me = await browser("viewer")

    page = await me.page("/console/stuck")

    assert page.status_code == 200, page.text
    body = html.unescape(page.text)
    assert '<a href="/console/stuck">Stuck</a>' in body  # the nav link
    assert f'href="/console/cases/{case_id}"' in body
    assert f'href="{settings.trace_url(case_id)}"' in body
    assert "escalated_unassigned" in body and "Customer called" in body
    assert "1 stuck case" in body
    filtered = await me.page("/console/stuck", params={"kind": "deadline_passed"})
    assert case_id not in filtered.text and "Nothing is stuck for these filters" in filtered.text
    wrong = await me.page("/console/stuck", params={"kind": "bored"})
    assert wrong.status_code == 422 and "kind: &#39;bored&#39; is not one of" in wrong.text
