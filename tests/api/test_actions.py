"""Case actions: each is a workflow update; its validator decides what is allowed now."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from api.errors import UNCONFIRMED
from api.main import DEFAULT_TIMEOUTS
from core.db import SessionFactory
from tests.api.conftest import NO_CHANGES, Api, assert_problem, client_policy, failed_delivery
from worker import build_worker

NEIGHBOUR = {"option": "neighbour", "neighbour_name": "Bob", "neighbour_address": "3 Main St"}


async def _waiting_case(api: Api) -> str:
    response = await api.post("/cases/failed-deliveries", json=failed_delivery())
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")
    return case_id


def _in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


async def _wait_for_message(api: Api, case_id: str, role: str, template: str) -> dict[str, Any]:
    """Poll the detail until a message is stored: emails are sent after an update answers."""
    messages: list[dict[str, Any]] = []
    for _ in range(300):
        messages = (await api.get(f"/cases/{case_id}")).json()["messages"]
        for message in messages:
            if (message["recipient_role"], message["template"]) == (role, template):
                return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {template} to {role} for {case_id}: {messages}")


async def test_ops_book_a_redelivery_window_for_the_customer(api: Api):
    case_id = await _waiting_case(api)
    choice = {"option": "redelivery_window", "date": _in_days(2), "window": "evening"}

    response = await api.post(f"/cases/{case_id}/redelivery", json=choice)

    assert response.status_code == 200, response.text
    chosen = [e for e in response.json()["timeline"] if e["kind"] == "redelivery_chosen"]
    assert chosen and chosen[0]["actor"] == "ops:ops-key"
    assert "redelivery" not in response.json()["allowed_actions"]
    booked = await api.wait_for(case_id, "redelivery_scheduled")
    assert booked["details"]["redelivery_option"] == "redelivery_window"
    assert booked["deadline_at"].startswith(_in_days(2))


async def test_a_second_redelivery_is_409_with_the_reason(api: Api, sessions: SessionFactory):
    await client_policy(sessions, "failed_delivery", **NO_CHANGES)
    case_id = await _waiting_case(api)
    assert (await api.post(f"/cases/{case_id}/redelivery", json=NEIGHBOUR)).status_code == 200

    problem = assert_problem(await api.post(f"/cases/{case_id}/redelivery", json=NEIGHBOUR), 409)

    assert "'redelivery' is not allowed" in problem["detail"]


async def test_a_window_without_a_window_names_the_field(api: Api):
    case_id = await _waiting_case(api)
    response = await api.post(
        f"/cases/{case_id}/redelivery", json={"option": "redelivery_window", "date": _in_days(2)}
    )
    assert_problem(response, 422, "window")
    assert (await api.wait_for(case_id))["status"] == "waiting_on_customer"


async def test_a_date_outside_the_horizon_names_the_date(api: Api):
    case_id = await _waiting_case(api)
    late = {"option": "redelivery_window", "date": _in_days(30), "window": "morning"}

    problem = assert_problem(await api.post(f"/cases/{case_id}/redelivery", json=late), 422, "date")

    assert "date must be between" in problem["detail"]
    detail = await api.wait_for(case_id)
    assert detail["status"] == "waiting_on_customer" and "redelivery" in detail["allowed_actions"]


async def test_a_pickup_point_of_another_depot_names_the_field(api: Api):
    case_id = await _waiting_case(api)
    elsewhere = {"option": "pickup_point", "pickup_point_id": "pp-nyc"}

    problem = assert_problem(
        await api.post(f"/cases/{case_id}/redelivery", json=elsewhere), 422, "pickup_point_id"
    )

    assert "ldn-1" in problem["detail"]
    detail = await api.wait_for(case_id)
    assert "redelivery_chosen" not in [e["kind"] for e in detail["timeline"]]
    here = {"option": "pickup_point", "pickup_point_id": "pp-corner"}
    assert (await api.post(f"/cases/{case_id}/redelivery", json=here)).status_code == 200
    booked = await api.wait_for(case_id, "redelivery_scheduled")
    assert "Corner Shop" in booked["details"]["redelivery"]


async def test_delivery_outcome_before_a_booking_is_409(api: Api):
    case_id = await _waiting_case(api)
    outcome = {"outcome": "delivered", "attempted_at": datetime.now(UTC).isoformat()}

    problem = assert_problem(
        await api.post(f"/cases/{case_id}/delivery-outcome", json=outcome), 409
    )

    assert (
        "'delivery-outcome' is not allowed while the case is waiting_on_customer"
        in problem["detail"]
    )


async def test_delivered_outcome_closes_the_case(api: Api):
    case_id = await _waiting_case(api)
    await api.post(f"/cases/{case_id}/redelivery", json=NEIGHBOUR)
    await api.wait_for(case_id, "redelivery_scheduled")
    outcome = {"outcome": "delivered", "attempted_at": datetime.now(UTC).isoformat()}

    response = await api.post(f"/cases/{case_id}/delivery-outcome", json=outcome)

    assert response.status_code == 200, response.text
    closed = await api.wait_for(case_id, "closed")
    assert closed["resolution"] == "delivered" and closed["closed_at"]
    assert closed["timeline"][-1]["summary"] == "Delivered; case closed"


async def test_failed_outcome_needs_a_reason_and_starts_the_next_attempt(api: Api):
    case_id = await _waiting_case(api)
    await api.post(f"/cases/{case_id}/redelivery", json=NEIGHBOUR)
    await api.wait_for(case_id, "redelivery_scheduled")
    failed = {"outcome": "failed", "attempted_at": datetime.now(UTC).isoformat()}

    assert_problem(await api.post(f"/cases/{case_id}/delivery-outcome", json=failed), 422, "reason")
    response = await api.post(
        f"/cases/{case_id}/delivery-outcome", json={**failed, "reason": "not_home"}
    )

    assert response.status_code == 200, response.text
    detail = await api.wait_for(case_id, "waiting_on_customer", subject_contains="attempt 2")
    assert detail["details"]["attempt_number"] == 2


async def test_notes_assign_and_escalate_go_on_the_timeline(api: Api):
    case_id = await _waiting_case(api)

    noted = await api.post(f"/cases/{case_id}/notes", json={"text": "Called the customer"})
    assigned = await api.post(f"/cases/{case_id}/assign", json={"assignee": "kim"})
    escalated = await api.post(f"/cases/{case_id}/escalate", json={"reason": "VIP client"})

    assert noted.status_code == assigned.status_code == escalated.status_code == 200
    note = [e for e in noted.json()["timeline"] if e["kind"] == "note"]
    assert note[0]["summary"] == "Called the customer" and note[0]["actor"] == "ops:ops-key"
    assert assigned.json()["assignee"] == "kim"
    body = escalated.json()
    assert body["escalated"] is True and body["escalation_reason"] == "VIP client"
    assert "escalated" in [e["kind"] for e in body["timeline"]]  # a queried, full state
    # The update answers without waiting for the email; it is stored soon after.
    await _wait_for_message(api, case_id, "dispatcher", "case/escalation")
    assert_problem(await api.post(f"/cases/{case_id}/notes", json={"text": ""}), 422, "text")


async def test_a_viewer_cannot_act(api: Api):
    case_id = await _waiting_case(api)
    response = await api.post(f"/cases/{case_id}/notes", json={"text": "hi"}, role="viewer")
    assert_problem(response, 403)


async def test_cancel_closes_the_case(api: Api):
    case_id = await _waiting_case(api)

    response = await api.post(f"/cases/{case_id}/cancel", json={"reason": "collected at depot"})

    # Accepted; the case may take a moment to close, so the answer need not say cancelled yet.
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("waiting_on_customer", "cancelled")
    assert response.json()["timeline"]  # built from a fresh query, not the update's result
    cancelled = await api.wait_for(case_id, "cancelled")
    assert cancelled["resolution"] == "cancelled"
    again = await api.post(f"/cases/{case_id}/cancel", json={"reason": "again"})
    # Refused by the validator, or by the server once the workflow has ended: 409 either way.
    detail = assert_problem(again, 409)["detail"]
    assert "not allowed while the case is cancelled" in detail or "the case is closed" in detail


async def test_acting_on_a_finished_workflow_is_409_the_case_is_closed(api: Api, time_env):
    case_id = await _waiting_case(api)
    await api.post(f"/cases/{case_id}/cancel", json={"reason": "collected at depot"})
    await time_env.client.get_workflow_handle(case_id).result()  # the workflow has ended

    cancel = await api.post(f"/cases/{case_id}/cancel", json={"reason": "again"})
    assign = await api.post(f"/cases/{case_id}/assign", json={"assignee": "Sam"})

    assert assert_problem(cancel, 409)["detail"] == f"the case is closed ('{case_id}')"
    assert assert_problem(assign, 409)["type"] == "urn:casedesk:problem:case-closed"
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["status"] == "cancelled" and detail["allowed_actions"] == ["notes"]


async def test_a_closed_case_takes_notes_after_its_last_event(api: Api, time_env):
    case_id = await _waiting_case(api)
    await api.post(f"/cases/{case_id}/cancel", json={"reason": "collected at depot"})
    await time_env.client.get_workflow_handle(case_id).result()  # the workflow has ended
    before = (await api.get(f"/cases/{case_id}")).json()["timeline"]

    first, second = await asyncio.gather(
        api.post(f"/cases/{case_id}/notes", json={"text": "Customer called to say thanks"}),
        api.post(f"/cases/{case_id}/notes", json={"text": "Card left at the depot"}),
    )

    assert first.status_code == second.status_code == 200, (first.text, second.text)
    timeline = (await api.get(f"/cases/{case_id}")).json()["timeline"]
    added = timeline[len(before) :]
    assert timeline[: len(before)] == before  # nothing before them changed
    assert sorted(e["summary"] for e in added) == [
        "Card left at the depot",
        "Customer called to say thanks",
    ]
    assert {e["kind"] for e in added} == {"note"} and {e["actor"] for e in added} == {"ops:ops-key"}
    assert [e["seq"] for e in added] == [before[-1]["seq"] + 1, before[-1]["seq"] + 2]
    assert (await api.get(f"/cases/{case_id}")).json()["status"] == "cancelled"


async def test_an_outcome_for_another_attempt_is_409_and_for_this_one_200(api: Api):
    case_id = await _waiting_case(api)
    await api.post(f"/cases/{case_id}/redelivery", json=NEIGHBOUR)
    await api.wait_for(case_id, "redelivery_scheduled")
    delivered = {"outcome": "delivered", "attempted_at": datetime.now(UTC).isoformat()}

    stale = await api.post(
        f"/cases/{case_id}/delivery-outcome", json={**delivered, "attempt_number": 2}
    )
    assert_problem(stale, 409)
    assert (await api.wait_for(case_id))["status"] == "redelivery_scheduled"

    current = await api.post(
        f"/cases/{case_id}/delivery-outcome", json={**delivered, "attempt_number": 1}
    )
    assert current.status_code == 200, current.text
    assert (await api.wait_for(case_id, "closed"))["resolution"] == "delivered"
    assert_problem(
        await api.post(
            f"/cases/{case_id}/delivery-outcome", json={**delivered, "attempt_number": 0}
        ),
        422,
        "attempt_number",
    )


async def test_the_openapi_schema_asks_for_the_outcomes_attempt_number(api: Api):
    schema = (await api.get("/openapi.json", role=None)).json()
    operation = schema["paths"]["/cases/{case_id}/delivery-outcome"]["post"]
    assert "attempt_number" in operation["description"]
    assert "409" in operation["description"]
    assert "attempt_number" in schema["components"]["schemas"]["DeliveryOutcomeIn"]["properties"]


async def test_an_update_not_confirmed_in_time_is_504_it_may_still_apply(
    app, raw_client, keys, time_env, settings, sessions
):
    api = Api(raw=raw_client, keys=keys)
    async with build_worker(time_env.client, settings, sessions):
        case_id = await _waiting_case(api)
    # No worker now: the update is sent but nobody confirms it within the update timeout.
    app.state.timeouts = replace(
        DEFAULT_TIMEOUTS, query=timedelta(seconds=1), update=timedelta(seconds=1)
    )

    response = await api.post(f"/cases/{case_id}/cancel", json={"reason": "collected"})

    problem = assert_problem(response, 504)
    assert problem["detail"] == UNCONFIRMED
    assert problem["type"] == "urn:casedesk:problem:not-confirmed-in-time"
