"""GET /cases (the SQL index, filtered and paginated) and GET /cases/{id} (live detail)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from api.main import DEFAULT_TIMEOUTS
from tests.api.conftest import Api, assert_problem, failed_delivery
from worker import build_worker

HOUR = timedelta(hours=1)


async def _open(api: Api, status: str = "waiting_on_customer", **fields) -> str:
    response = await api.post("/cases/failed-deliveries", json=failed_delivery(**fields))
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]
    await api.wait_for(case_id, status)
    await api.wait_for_list({"status": status}, case_id)
    return case_id


def ids(page: dict) -> list[str]:
    return [item["case_id"] for item in page["items"]]


async def test_detail_has_the_timeline_messages_deadline_and_trace_url(api: Api):
    case_id = await _open(api)
    await api.customer_link(case_id)  # the notice is stored

    detail = (await api.get(f"/cases/{case_id}")).json()

    assert detail["live"] is True
    assert detail["status"] == "waiting_on_customer" and detail["overdue"] is False
    assert detail["deadline_at"] and detail["next_step"] == "remind the customer"
    assert detail["trace_url"] == f"http://127.0.0.1:8233/namespaces/default/workflows/{case_id}"
    kinds = [event["kind"] for event in detail["timeline"]]
    assert kinds[:2] == ["opened", "attempt_failed"] and "message" in kinds
    notice = next(m for m in detail["messages"] if m["template"].endswith("customer_notice"))
    assert notice["recipient_role"] == "customer" and notice["recipient_email"] == "ada@example.com"
    assert notice["status"] == "sent"
    assert {"redelivery", "notes", "cancel"} <= set(detail["allowed_actions"])
    assert detail["documents"] == []


async def test_messages_lists_the_customer_notice_with_its_link(api: Api):
    case_id = await _open(api)
    link = await api.customer_link(case_id)

    page = (await api.get("/messages", params={"case_id": case_id}, role="ops")).json()

    notice = next(m for m in page["items"] if m["key"] == f"{case_id}/a1/customer-notice")
    assert notice["recipient"] == {
        "role": "customer",
        "name": "Ada Customer",
        "email": "ada@example.com",
    }
    assert link in notice["text_body"] and link in notice["html_body"]
    assert notice["status"] == "sent" and notice["backend"] == "outbox" and notice["error"] is None
    assert notice["subject"] and notice["sent_at"]
    assert (await api.get("/messages", params={"status": "failed"})).json()["total"] == 0
    assert_problem(await api.get("/messages", params={"status": "lost"}), 422, "status")
    assert_problem(await api.get("/messages", role=None), 401)


async def test_a_viewer_sees_customer_links_redacted_and_ops_see_them(api: Api):
    case_id = await _open(api)
    link = await api.customer_link(case_id)  # as ops
    token = link.removeprefix("/r/")
    params = {"case_id": case_id}

    as_viewer = await api.get("/messages", params=params, role="viewer")
    as_ops = await api.get("/messages", params=params, role="ops")
    detail = await api.get(f"/cases/{case_id}", role="viewer")

    assert as_viewer.status_code == as_ops.status_code == detail.status_code == 200
    assert token not in as_viewer.text and token not in detail.text
    key = f"{case_id}/a1/customer-notice"
    seen = next(m for m in as_viewer.json()["items"] if m["key"] == key)
    for body in (seen["text_body"], seen["html_body"]):
        assert "http://testserver/r/…redacted…" in body  # the rest of the email is kept
    assert "Ada Customer" in seen["text_body"]
    redacted = "/r/" + seen["text_body"].split("/r/")[1].split()[0]
    page = await api.raw.get(redacted)  # what a viewer could copy is no working link
    assert page.status_code == 400 and "This link is not valid" in page.text
    shown = next(m for m in as_ops.json()["items"] if m["key"] == key)
    assert token in shown["text_body"] and token in shown["html_body"]
    assert (await api.raw.get(link)).status_code == 200  # ops' link verifies


async def test_an_unknown_case_is_404_for_detail_and_actions(api: Api):
    problem = assert_problem(await api.get("/cases/failed-delivery-ghost"), 404)
    assert "failed-delivery-ghost" in problem["detail"]
    assert_problem(await api.post("/cases/failed-delivery-ghost/notes", json={"text": "hi"}), 404)


async def test_list_filters_by_type_status_client_and_search(api: Api):
    await api.post("/clients", json={"id": "globex", "name": "Globex"}, role="admin")
    waiting = await _open(api, shipment_id="ABC-waiting")
    closed = await _open(api, "closed", shipment_id="ABC-refused", reason="refused")
    other = await _open(api, shipment_id="XYZ-globex", client_id="globex")

    everything = (await api.get("/cases", params={"type": "failed_delivery"})).json()
    assert ids(everything) == [other, closed, waiting]  # newest first
    assert everything["total"] == 3
    item = everything["items"][0]
    assert item["trace_url"].endswith(other) and item["deadline_at"] and not item["overdue"]
    assert (await api.get("/cases", params={"type": "damage_claim"})).json()["total"] == 0
    assert ids((await api.get("/cases", params={"status": "closed"})).json()) == [closed]
    refused = (await api.get("/cases", params={"status": "closed"})).json()["items"][0]
    assert refused["resolution"] == "returned_to_sender" and refused["closed_at"]
    assert ids((await api.get("/cases", params={"client_id": "globex"})).json()) == [other]
    assert ids((await api.get("/cases", params={"q": "abc-"})).json()) == [closed, waiting]
    assert ids((await api.get("/cases", params={"q": "refused"})).json()) == [closed]
    assert ids((await api.get("/cases", params={"q": "%"})).json()) == []
    page = (await api.get("/cases", params={"limit": 1, "offset": 1})).json()
    assert ids(page) == [closed] and page["total"] == 3
    assert_problem(await api.get("/cases", params={"status": "lost"}), 422, "status")


async def test_list_filters_escalated_after_48_hours_without_an_answer(api: Api, time_env):
    escalated = await _open(api)
    await time_env.sleep(49 * HOUR)
    fresh = await _open(api)

    page = await api.wait_for_list({"escalated": True}, escalated)

    assert ids(page) == [escalated]
    assert page["items"][0]["escalated"] is True
    assert "48 h" in page["items"][0]["escalation_reason"]
    assert ids((await api.get("/cases", params={"escalated": False})).json()) == [fresh]


async def test_list_filters_overdue_and_assignee(api: Api, time_env):
    late = await _open(api)
    booked = await api.post(
        f"/cases/{late}/redelivery",
        json={"option": "neighbour", "neighbour_name": "Bob", "neighbour_address": "3 Main St"},
    )
    assert booked.status_code == 200, booked.text
    await api.wait_for_list({"status": "redelivery_scheduled"}, late)
    await time_env.sleep(72 * HOUR)  # past the booked window, no outcome reported
    on_time = await _open(api)
    await api.post(f"/cases/{on_time}/assign", json={"assignee": "kim"})

    overdue = (await api.get("/cases", params={"overdue": True})).json()
    assert ids(overdue) == [late] and overdue["items"][0]["overdue"] is True
    assert ids((await api.get("/cases", params={"overdue": False})).json()) == [on_time]
    assigned = await api.wait_for_list({"assignee": "kim"}, on_time)
    assert ids(assigned) == [on_time] and assigned["items"][0]["assignee"] == "kim"


async def test_detail_falls_back_to_the_index_when_no_worker_answers(
    app, raw_client, keys, time_env, settings, sessions
):
    api = Api(raw=raw_client, keys=keys)
    app.state.timeouts = replace(DEFAULT_TIMEOUTS, query=timedelta(seconds=1))
    async with build_worker(time_env.client, settings, sessions):
        case_id = await _open(api)
        await api.customer_link(case_id)

    response = await api.get(f"/cases/{case_id}")

    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["live"] is False
    assert detail["status"] == "waiting_on_customer" and detail["deadline_at"]
    assert detail["allowed_actions"] == []
    assert [e["kind"] for e in detail["timeline"]][:2] == ["opened", "attempt_failed"]
    assert any(m["template"] == "failed_delivery/customer_notice" for m in detail["messages"])
