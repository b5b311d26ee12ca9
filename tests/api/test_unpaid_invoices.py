"""Unpaid invoices through the API, on SQLite and PostgreSQL with a real worker: opening
(exact money: decimal strings only, the currency's minor units, the due date), payments,
disputes, promises, write-offs and the client's dispatch hold."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from activities.pdf import render_pdf
from core.db import SessionFactory
from tests.api.claims import wait_until
from tests.api.conftest import CLIENT_ID, Api, assert_problem
from tests.api.invoices import add_billing_contact, invoice

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
async def billing_contact(sessions: SessionFactory, reference_data: None) -> None:
    await add_billing_contact(sessions)


async def today(time_env: Any) -> date:
    now: datetime = await time_env.get_current_time()
    return now.astimezone(UTC).date()


async def open_invoice(api: Api, **fields: Any) -> str:
    response = await api.post("/cases/unpaid-invoices", json=invoice(**fields))
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    await api.wait_for(case_id, "awaiting_payment")
    return case_id


async def pay(api: Api, case_id: str, amount: str, reference: str = "BACS-1") -> dict[str, Any]:
    response = await api.post(
        f"/cases/{case_id}/payments",
        json={"amount": amount, "paid_on": "2026-12-01", "reference": reference},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- opening ------------------------------------------------------------------------------


async def test_opening_is_201_with_the_next_ladder_date_and_a_repeat_is_200(api: Api, time_env):
    issued = await today(time_env)
    body = invoice(issued_on=issued.isoformat(), due_on=None)

    response = await api.post("/cases/unpaid-invoices", json=body)

    assert response.status_code == 201, response.text
    case_id = f"unpaid-invoice-{body['invoice_id']}"
    assert response.headers["location"] == f"/cases/{case_id}"
    assert response.json()["case_id"] == case_id
    assert response.json()["type"] == "unpaid_invoice"
    detail = await api.wait_for(case_id, "awaiting_payment")
    # Due on issue + 30 days (the default terms); the first step is 3 days before, at 09:00 UTC.
    due = issued + 30 * DAY
    assert detail["details"]["due_on"] == due.isoformat()
    first_step = datetime.combine(due - 3 * DAY, time(9), tzinfo=UTC)
    assert datetime.fromisoformat(detail["deadline_at"]) == first_step
    assert detail["details"]["amount"] == "1234.50"
    assert detail["details"]["balance"] == "1234.50"
    assert detail["details"]["currency"] == "GBP"
    assert {"payments", "disputes", "promise-to-pay", "write-off"} <= set(detail["allowed_actions"])

    again = await api.post("/cases/unpaid-invoices", json={**body, "amount": "99.00"})

    assert again.status_code == 200, again.text
    assert again.json()["case_id"] == case_id
    assert again.json()["details"]["amount"] == "1234.50"
    assert "location" not in again.headers


async def test_jpy_has_no_minor_units(api: Api):
    case_id = await open_invoice(api, amount="150000", currency="JPY")

    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["amount"] == "150000"

    refused = await api.post(
        "/cases/unpaid-invoices", json=invoice(amount="1500.5", currency="JPY")
    )
    assert_problem(refused, 422, "amount")
    assert "JPY" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": 1234.5}, "amount"),  # a JSON number, never a float
        ({"amount": 1234}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-10.00"}, "amount"),
        ({"amount": "12.345"}, "amount"),  # more decimals than GBP has
        ({"amount": "lots"}, "amount"),
        ({"client_id": "nobody"}, "client_id"),
        ({"currency": "XYZ"}, "currency"),
        ({"issued_on": "2026-12-10", "due_on": "2026-12-01"}, "due_on"),
    ],
    ids=[
        "float",
        "integer",
        "zero",
        "negative",
        "gbp-decimals",
        "text",
        "unknown-client",
        "unknown-currency",
        "due-before-issued",
    ],
)
async def test_bad_openings_are_422_naming_the_field(api: Api, fields, field):
    response = await api.post("/cases/unpaid-invoices", json=invoice(**fields))

    assert_problem(response, 422, field)


async def test_opening_needs_ops(api: Api):
    response = await api.post("/cases/unpaid-invoices", json=invoice(), role="viewer")

    assert response.status_code == 403


# --- payments -----------------------------------------------------------------------------


async def test_a_payment_lowers_the_balance_and_the_same_reference_is_recorded_once(api: Api):
    case_id = await open_invoice(api)

    paid = await pay(api, case_id, "500.00")

    assert paid["details"]["balance"] == "734.50"
    assert paid["status"] == "awaiting_payment"
    payments = paid["details"]["payments"]
    assert [(p["amount"], p["reference"]) for p in payments] == [("500.00", "BACS-1")]
    assert any(e["kind"] == "payment" for e in paid["timeline"])

    again = await pay(api, case_id, "500.00")

    assert again["details"]["balance"] == "734.50"
    assert len(again["details"]["payments"]) == 1
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["balance"] == "734.50"
    assert [e["kind"] for e in detail["timeline"]].count("payment") == 1


async def test_a_payment_as_a_json_number_is_422(api: Api):
    case_id = await open_invoice(api)

    response = await api.post(
        f"/cases/{case_id}/payments",
        json={"amount": 500.0, "paid_on": "2026-12-01", "reference": "BACS-1"},
    )

    assert_problem(response, 422, "amount")


async def test_full_payment_closes_the_case_paid(api: Api):
    case_id = await open_invoice(api)

    await pay(api, case_id, "234.50", reference="BACS-1")
    await pay(api, case_id, "1000.00", reference="BACS-2")

    detail = await api.wait_for(case_id, "closed")
    assert detail["resolution"] == "paid"
    assert detail["details"]["balance"] == "0.00"
    refused = await api.post(
        f"/cases/{case_id}/payments",
        json={"amount": "1.00", "paid_on": "2026-12-01", "reference": "BACS-3"},
    )
    assert refused.status_code == 409, refused.text


# --- write-off, disputes, promises -----------------------------------------------------------


async def test_a_write_off_needs_an_admin_and_closes_written_off(api: Api):
    case_id = await open_invoice(api)
    body = {"reason": "The client went out of business."}

    refused = await api.post(f"/cases/{case_id}/write-off", json=body, role="ops")

    assert refused.status_code == 403, refused.text
    assert (await api.get(f"/cases/{case_id}")).json()["status"] == "awaiting_payment"

    response = await api.post(f"/cases/{case_id}/write-off", json=body, role="admin")

    assert response.status_code == 200, response.text
    detail = await api.wait_for(case_id, "closed")
    assert detail["resolution"] == "written_off"


async def test_a_dispute_pauses_and_an_adjusted_resolution_sets_the_new_balance(api: Api):
    case_id = await open_invoice(api)

    disputed = await api.post(
        f"/cases/{case_id}/disputes",
        json={"reason": "Two deliveries were never made.", "disputed_amount": "234.50"},
    )

    assert disputed.status_code == 200, disputed.text
    detail = await api.wait_for(case_id, "disputed")
    assert detail["details"]["dispute"]["reason"] == "Two deliveries were never made."
    assert detail["details"]["dispute"]["disputed_amount"] == "234.50"
    assert "resolve-dispute" in detail["allowed_actions"]

    missing = await api.post(f"/cases/{case_id}/disputes/resolve", json={"outcome": "adjusted"})
    assert_problem(missing, 422, "adjusted_amount")

    resolved = await api.post(
        f"/cases/{case_id}/disputes/resolve",
        json={"outcome": "adjusted", "adjusted_amount": "1000.00"},
    )

    assert resolved.status_code == 200, resolved.text
    detail = await wait_until(
        api,
        case_id,
        lambda b: b["status"] == "awaiting_payment" and b["details"]["balance"] == "1000.00",
        "resumed with the adjusted balance",
    )
    assert detail["details"]["amount"] == "1000.00"
    assert detail["details"]["dispute"] is None


async def test_a_promise_to_pay_pauses_the_ladder(api: Api, time_env):
    case_id = await open_invoice(api)
    promised_on = await today(time_env) + 10 * DAY

    response = await api.post(
        f"/cases/{case_id}/promise-to-pay",
        json={"promised_on": promised_on.isoformat(), "amount": "1234.50"},
    )

    assert response.status_code == 200, response.text
    detail = await api.wait_for(case_id, "payment_promised")
    assert detail["details"]["promise"]["promised_on"] == promised_on.isoformat()
    assert detail["details"]["promise"]["amount"] == "1234.50"


# --- the dispatch hold ----------------------------------------------------------------------


async def test_the_hold_30_days_past_due_shows_on_the_client_and_release_clears_it(
    api: Api, time_env
):
    due = await today(time_env)
    case_id = await open_invoice(
        api, issued_on=(due - 30 * DAY).isoformat(), due_on=due.isoformat()
    )
    client = (await api.get(f"/clients/{CLIENT_ID}")).json()
    assert client["dispatch_hold"] is None

    await time_env.sleep(31 * DAY)

    detail = await wait_until(
        api, case_id, lambda b: b["details"]["dispatch_hold"] is True, "set the dispatch hold"
    )
    assert "dispatch-hold" in detail["details"]["steps_sent"]
    assert detail["escalated"] is True
    client = (await api.get(f"/clients/{CLIENT_ID}")).json()
    hold = client["dispatch_hold"]
    assert hold["case_id"] == case_id
    assert case_id.removeprefix("unpaid-invoice-") in hold["reason"]
    assert hold["since"]

    assert (await api.post(f"/clients/{CLIENT_ID}/release-hold", role="ops")).status_code == 403
    released = await api.post(f"/clients/{CLIENT_ID}/release-hold", role="admin")

    assert released.status_code == 200, released.text
    assert released.json()["id"] == CLIENT_ID
    assert released.json()["dispatch_hold"] is None
    assert (await api.get(f"/clients/{CLIENT_ID}")).json()["dispatch_hold"] is None


async def test_release_hold_of_an_unknown_client_is_404(api: Api):
    response = await api.post("/clients/nobody/release-hold", role="admin")

    assert_problem(response, 404)


async def test_an_overdue_invoice_gets_only_the_latest_step_due(api: Api, time_env):
    due = await today(time_env) - 8 * DAY
    case_id = await open_invoice(
        api, issued_on=(due - 30 * DAY).isoformat(), due_on=due.isoformat()
    )

    page = await api.poll(
        f"/messages?case_id={case_id}",
        lambda b: any(m["template"] == "dunning/overdue" for m in b["items"]),
        "stored the overdue email",
    )

    assert [m["template"] for m in page["items"]] == ["dunning/overdue"]
    message = page["items"][0]
    assert message["recipient"]["email"] == "payables@acme.example"
    assert "8 days past due" in message["subject"]
    assert "Balance due: 1,234.50 GBP" in message["text_body"]
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["steps_sent"] == ["overdue-7"]
    next_step = datetime.combine(due + 14 * DAY, time(9), tzinfo=UTC)
    assert datetime.fromisoformat(detail["deadline_at"]) == next_step


async def test_an_invoice_issued_in_the_future_is_422(api: Api, time_env):
    later = await today(time_env) + timedelta(days=3)
    body = invoice(issued_on=later.isoformat(), due_on=(later + timedelta(days=30)).isoformat())

    assert_problem(await api.post("/cases/unpaid-invoices", json=body), 422, "issued_on")


async def test_a_payment_dated_in_the_future_is_422(api: Api, time_env):
    case_id = await open_invoice(api)
    later = await today(time_env) + timedelta(days=3)
    payment = {"amount": "10.00", "paid_on": later.isoformat(), "reference": "BACS-F"}

    response = await api.post(f"/cases/{case_id}/payments", json=payment)

    assert_problem(response, 422, "paid_on")
    assert (await api.get(f"/cases/{case_id}")).json()["details"]["payments"] == []


# --- the invoice itself -----------------------------------------------------------------------


async def test_the_invoice_pdf_is_kept_on_the_case_and_attached_to_the_reminders(api: Api):
    pdf = render_pdf(["Invoice INV-1", "Total 1,234.50 GBP"], title="Invoice")
    due = datetime.now(UTC).date() - 8 * DAY  # overdue: the +7 reminder goes out at once
    case_id = await open_invoice(
        api,
        issued_on=(due - 30 * DAY).isoformat(),
        due_on=due.isoformat(),
        invoice_pdf=base64.b64encode(pdf).decode(),
    )

    detail = (await api.get(f"/cases/{case_id}")).json()
    (document,) = detail["documents"]
    assert document["kind"] == "invoice"
    download = await api.get(document["download_url"])
    assert download.status_code == 200 and download.content == pdf
    assert download.headers["content-type"] == "application/pdf"
    page = await api.poll(
        f"/messages?case_id={case_id}",
        lambda b: any(m["template"] == "dunning/overdue" for m in b["items"]),
        "stored the overdue email",
    )
    (attached,) = page["items"][0]["attachments"]
    assert attached["id"] == document["id"] and attached["content_type"] == "application/pdf"


@pytest.mark.parametrize(
    "encoded",
    [
        "not base64!",
        base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode(),  # an image, not a PDF
        base64.b64encode(b"just some text").decode(),
    ],
    ids=["not-base64", "png", "text"],
)
async def test_an_invoice_pdf_that_is_not_a_pdf_is_422_and_opens_nothing(api: Api, encoded):
    body = invoice(invoice_pdf=encoded)

    response = await api.post("/cases/unpaid-invoices", json=body)

    assert_problem(response, 422, "invoice_pdf")
    assert (await api.get(f"/cases/unpaid-invoice-{body['invoice_id']}")).status_code == 404
