"""The dispatch hold over the API, on SQLite and PostgreSQL with a real worker: the hold an
unpaid invoice sets at the end of its ladder is on the client, in every new failed-delivery
case of that client and in the dispatchers' inboxes; an admin's release goes through the case
(its timeline, the people told, the ladder going on), or straight to the client when the case
has finished."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest

from core.db import SessionFactory
from tests.api.claims import wait_until
from tests.api.conftest import CLIENT_ID, DEPOT_ID, Api, assert_problem
from tests.api.invoices import add_billing_contact, invoice

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
async def billing_contact(sessions: SessionFactory, reference_data: None) -> None:
    await add_billing_contact(sessions)


async def messages(api: Api, case_id: str) -> dict[str, dict[str, Any]]:
    page = (await api.get("/messages", params={"case_id": case_id})).json()
    return {m["key"].removeprefix(f"{case_id}/"): m for m in page["items"]}


async def holding_invoice(api: Api, time_env: Any) -> str:
    """A failed delivery through the London depot (so the client has a depot), then an
    invoice 31 days overdue: opened past the hold step, it holds at once."""
    delivery = await api.open_case()
    assert delivery.status_code == 201, delivery.text
    await api.wait_for(delivery.json()["case_id"], "waiting_on_customer")
    today = (await time_env.get_current_time()).astimezone(UTC).date()
    due = today - 31 * DAY
    opened = await api.post(
        "/cases/unpaid-invoices",
        json=invoice(issued_on=(due - 30 * DAY).isoformat(), due_on=due.isoformat()),
    )
    assert opened.status_code == 201, opened.text
    case_id: str = opened.json()["case_id"]
    await wait_until(
        api,
        case_id,
        lambda b: b["details"]["dispatch_hold"] and b["escalated"],
        "set the dispatch hold",
    )
    await api.poll(  # the escalation is the hold step's last message
        f"/messages?case_id={case_id}",
        lambda b: any(m["key"].endswith("/dispatch-hold/escalation") for m in b["items"]),
        "told the account manager",
    )
    return case_id


async def test_the_hold_is_on_the_client_in_the_dispatchers_inbox_and_in_new_deliveries(
    api: Api, time_env
):
    case_id = await holding_invoice(api, time_env)

    hold = (await api.get(f"/clients/{CLIENT_ID}")).json()["dispatch_hold"]
    assert hold["case_id"] == case_id
    sent = await messages(api, case_id)
    notice = sent[f"dispatch-hold/dispatcher-{DEPOT_ID}"]
    assert notice["template"] == "dunning/hold_set"
    assert notice["recipient"]["email"] == "dispatch.ldn@example.com"
    assert "Do not dispatch new shipments for Acme Retail" in notice["text_body"]
    assert sent["dispatch-hold/escalation"]["recipient"]["email"] == "adam@acme.example"
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["hold_depots"] == [DEPOT_ID]

    later = await api.open_case()

    assert later.status_code == 201, later.text
    opened = await api.wait_for(later.json()["case_id"], "waiting_on_customer")
    shown = opened["details"]["client_dispatch_hold"]
    assert shown["case_id"] == case_id and shown["reason"] == hold["reason"]
    assert "the client's dispatches are on hold" in opened["timeline"][0]["summary"]


async def test_a_release_goes_through_the_case_which_tells_everyone_and_goes_on(api: Api, time_env):
    case_id = await holding_invoice(api, time_env)

    released = await api.post(
        f"/clients/{CLIENT_ID}/release-hold",
        json={"reason": "Paying by card this afternoon."},
        role="admin",
    )

    assert released.status_code == 200, released.text
    assert released.json()["dispatch_hold"] is None
    detail = await wait_until(
        api,
        case_id,
        lambda b: any("Hold lifted" in e["summary"] for e in b["timeline"]),
        "recorded the release",
    )
    assert detail["status"] == "awaiting_payment"  # the balance is still chased
    assert detail["details"]["dispatch_hold"] is False
    lifted = next(e for e in detail["timeline"] if "Hold lifted" in e["summary"])
    assert lifted["summary"].endswith("Paying by card this afternoon.")
    assert lifted["actor"] == "admin:admin-key"
    sent = await api.poll(
        f"/messages?case_id={case_id}",
        lambda b: len([m for m in b["items"] if "/hold-lifted/" in m["key"]]) == 2,
        "told the dispatcher and the account manager",
    )
    recipients = {m["recipient"]["email"] for m in sent["items"] if "/hold-lifted/" in m["key"]}
    assert recipients == {"dispatch.ldn@example.com", "adam@acme.example"}

    again = await api.post(f"/clients/{CLIENT_ID}/release-hold", role="admin")
    assert again.status_code == 200 and again.json()["dispatch_hold"] is None


async def test_a_hold_whose_case_has_finished_is_cleared_on_the_client(api: Api, time_env):
    case_id = await holding_invoice(api, time_env)
    written_off = await api.post(
        f"/cases/{case_id}/write-off", json={"reason": "Insolvent."}, role="admin"
    )
    assert written_off.status_code == 200, written_off.text
    await api.wait_for(case_id, "closed")
    assert (await api.get(f"/clients/{CLIENT_ID}")).json()["dispatch_hold"]["case_id"] == case_id

    released = await api.post(f"/clients/{CLIENT_ID}/release-hold", role="admin")

    assert released.status_code == 200, released.text
    assert released.json()["dispatch_hold"] is None


async def test_a_release_needs_an_admin_and_a_reason_when_a_body_is_sent(api: Api):
    assert (await api.post(f"/clients/{CLIENT_ID}/release-hold", role="ops")).status_code == 403

    response = await api.post(
        f"/clients/{CLIENT_ID}/release-hold", json={"reason": ""}, role="admin"
    )

    assert_problem(response, 422, "reason")
