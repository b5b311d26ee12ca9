"""Invoicing end to end on the real stack (`tests/e2e/stack.py`: a Temporal dev server, the
worker and the API over HTTP, the demo data): stops posted to `/deliveries`, a run over HTTP,
the invoice emailed with its PDF and CSV and its unpaid-invoice case open. The schedules, which
only a real server has: created on the agreement's cycle in the client's zone, moved to another
cycle, paused and resumed with a note; a backfilled (late) run billing from the day after the
last invoice, once; a scheduled run that cannot price failing, telling the account manager and
pausing its schedule."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pypdf
import pytest
from temporalio.client import ScheduleBackfill

from core.bootstrap import DEMO_CLIENT_ID, DEMO_DEPOT_ID
from tests.e2e.stack import case_when, message_when

pytestmark = pytest.mark.e2e

LONDON = ZoneInfo("Europe/London")


def stop(shipment: str, at: dt.datetime, **fields: Any) -> dict[str, Any]:
    body = {
        "shipment_id": shipment,
        "client_id": DEMO_CLIENT_ID,
        "depot_id": DEMO_DEPOT_ID,
        "attempted_at": at.astimezone(dt.UTC).isoformat(),
        "outcome": "delivered",
        "zone": "B",
        "residential": True,
        "attempt_number": 1,
    }
    body.update(fields)
    return body


def last_month() -> tuple[dt.date, dt.date]:
    first = dt.datetime.now(LONDON).date().replace(day=1)
    end = first - dt.timedelta(days=1)
    return end.replace(day=1), end


def last_monday_two_am() -> dt.datetime:
    """The latest Monday 02:00 London time that has passed."""
    now = dt.datetime.now(LONDON)
    monday = now.date() - dt.timedelta(days=now.weekday())
    nominal = dt.datetime.combine(monday, dt.time(2), tzinfo=LONDON)
    if nominal > now:
        nominal -= dt.timedelta(days=7)
    return nominal


async def post_stops(http: httpx.AsyncClient, *stops: dict[str, Any]) -> None:
    response = await http.post("/deliveries", json=list(stops))
    assert response.status_code == 200, response.text
    assert response.json()["new"] == len(stops)


async def schedule_when(http: httpx.AsyncClient, check: Any, what: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(150):
        response = await http.get(f"/clients/{DEMO_CLIENT_ID}/invoicing")
        body = response.json()
        if response.status_code == 200 and check(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"the schedule never {what}: {body}")


async def weekly_from_today(http: httpx.AsyncClient) -> None:
    """A weekly version of the demo agreement, in force today: the schedule moves to it."""
    today = dt.datetime.now(LONDON).date()
    response = await http.put(
        f"/clients/{DEMO_CLIENT_ID}/rate-agreement",
        json={
            "effective_from": today.isoformat(),
            "currency": "GBP",
            "base_rate_per_stop": "3.50",
            "zone_rates": {"A": "0.00", "B": "1.25", "C": "2.10"},
            "residential_surcharge": "0.75",
            "failed_attempt_fee": "4.00",
            "minimum_charge_per_invoice": "25.00",
            "tax_rate": "0.20",
            "billing_cycle": "weekly",
        },
    )
    assert response.status_code in (200, 201), response.text


async def test_stops_in_a_run_over_http_the_invoice_emailed_and_its_case_open(stack) -> None:
    http, _ = stack
    start, end = last_month()
    day = dt.datetime.combine(start + dt.timedelta(days=2), dt.time(10), tzinfo=LONDON)
    await post_stops(
        http,
        stop("E2E-1", day),
        stop("E2E-2", day + dt.timedelta(hours=1), zone="C", residential=False),
        stop("E2E-3", day + dt.timedelta(days=1), outcome="failed", zone=None, residential=None),
    )

    response = await http.post(
        "/invoicing-runs",
        json={
            "client_id": DEMO_CLIENT_ID,
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
        },
    )

    assert response.status_code == 201, response.text
    invoice = response.json()["invoice"]
    number = invoice["invoice_id"]
    assert number == "INV-DEMO-SHOP-000001"
    # 5.50 + 5.60 + 4.00 = 15.10, lifted to the 25.00 minimum; tax 20%: 30.00.
    assert (invoice["stops_total"], invoice["subtotal"], invoice["total"]) == (
        "15.10",
        "25.00",
        "30.00",
    )
    case_id = f"unpaid-invoice-{number}"
    case = await case_when(http, case_id, "awaiting_payment")
    assert case["details"]["amount"] == "30.00"
    email = await message_when(http, case_id, "invoicing/invoice_issued")
    assert email["recipient"]["email"] == "accounts.demo-shop@example.com"
    assert email["status"] == "sent"
    assert [(a["name"], a["content_type"]) for a in email["attachments"]] == [
        (f"{number}.pdf", "application/pdf"),
        (f"{number}.csv", "text/csv"),
    ]
    assert "Total due: 30.00 GBP" not in email["text_body"]  # the email says Invoice total
    assert "Invoice total: 30.00 GBP" in email["text_body"]
    pdf = await http.get(f"/invoices/{number}/pdf")
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert number in text and "Total due 30.00 GBP" in text and "Demo Shop Ltd" in text
    listed = (await http.get("/invoices", params={"status": "open"})).json()
    assert [item["invoice_id"] for item in listed["items"]] == [number]


async def test_the_schedule_follows_the_agreement_and_pauses_with_a_note(stack) -> None:
    http, env = stack
    assert (await http.get(f"/clients/{DEMO_CLIENT_ID}/invoicing")).status_code == 404

    # The demo agreement is monthly: putting it again (same terms) syncs the schedule.
    current = (await http.get(f"/clients/{DEMO_CLIENT_ID}/rate-agreement")).json()
    terms = {
        k: current[k]
        for k in (
            "effective_from",
            "currency",
            "base_rate_per_stop",
            "zone_rates",
            "residential_surcharge",
            "failed_attempt_fee",
            "minimum_charge_per_invoice",
            "tax_rate",
            "billing_cycle",
            "payment_terms_days",
        )
    }
    assert (
        await http.put(f"/clients/{DEMO_CLIENT_ID}/rate-agreement", json=terms)
    ).status_code == 200
    monthly = await schedule_when(http, lambda b: b["cycle"] == "monthly", "went monthly")
    assert monthly["schedule_id"] == "invoicing-demo-shop"
    assert monthly["timezone"] == "Europe/London"
    assert monthly["overlap"] == "buffer_one"
    assert monthly["catchup_window_seconds"] == 27 * 86400
    for at in monthly["next_runs"]:
        local = dt.datetime.fromisoformat(at).astimezone(LONDON)
        assert (local.day, local.hour, local.minute) == (1, 2, 0)

    await weekly_from_today(http)
    weekly = await schedule_when(http, lambda b: b["cycle"] == "weekly", "went weekly")
    assert weekly["catchup_window_seconds"] == 6 * 86400
    for at in weekly["next_runs"]:
        local = dt.datetime.fromisoformat(at).astimezone(LONDON)
        assert (local.weekday(), local.hour, local.minute) == (0, 2, 0)

    paused = await http.post(
        f"/clients/{DEMO_CLIENT_ID}/invoicing/pause", json={"note": "client disputes rates"}
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    assert "client disputes rates" in paused.json()["note"]
    # A sync (the weekly version put again: same terms) keeps it paused.
    await weekly_from_today(http)
    described = await env.client.get_schedule_handle("invoicing-demo-shop").describe()
    assert described.schedule.state.paused

    resumed = await http.post(
        f"/clients/{DEMO_CLIENT_ID}/invoicing/resume", json={"note": "rates agreed"}
    )
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert "rates agreed" in resumed.json()["note"]
    refused = await http.post(f"/clients/{DEMO_CLIENT_ID}/invoicing/pause", json={})
    assert refused.status_code == 422


async def test_a_late_scheduled_run_bills_from_the_last_invoice_once(stack) -> None:
    """The system was down for the last Monday run: it starts late (a backfill of its nominal
    time), bills its own period from the day after the client's last invoice (the two weeks
    since), and the same nominal time again bills nothing more."""
    http, env = stack
    nominal = last_monday_two_am()
    week_before = nominal.date() - dt.timedelta(days=7)  # the Monday the period starts
    weeks = [week_before - dt.timedelta(days=7 * n) for n in (2, 1, 0)]  # W-3, W-2, W-1
    await post_stops(
        http,
        *(
            stop(f"W{i}-1", dt.datetime.combine(monday + dt.timedelta(days=1), dt.time(10), LONDON))
            for i, monday in enumerate(weeks)
        ),
    )
    manual = await http.post(
        "/invoicing-runs",
        json={
            "client_id": DEMO_CLIENT_ID,
            "period_start": weeks[0].isoformat(),
            "period_end": (weeks[0] + dt.timedelta(days=6)).isoformat(),
        },
    )
    assert manual.status_code == 201, manual.text
    await weekly_from_today(http)
    schedule = env.client.get_schedule_handle("invoicing-demo-shop")

    window = ScheduleBackfill(
        start_at=nominal - dt.timedelta(minutes=1), end_at=nominal + dt.timedelta(minutes=1)
    )
    await schedule.backfill(window)
    ran = await schedule_when(
        http,
        lambda b: [r["status"] for r in b["recent_runs"]] == ["completed"],
        "ran the backfill",
    )
    assert ran["recent_runs"][0]["scheduled_at"].startswith(
        nominal.astimezone(dt.UTC).isoformat().replace("+00:00", "")
    )
    invoices = (await http.get("/invoices", params={"client_id": DEMO_CLIENT_ID})).json()["items"]
    assert sorted((i["invoice_id"], i["period_start"], i["period_end"]) for i in invoices) == [
        (
            "INV-DEMO-SHOP-000001",
            weeks[0].isoformat(),
            (weeks[0] + dt.timedelta(days=6)).isoformat(),
        ),
        (  # the two weeks since, in one invoice: nothing skipped, nothing twice
            "INV-DEMO-SHOP-000002",
            weeks[1].isoformat(),
            (weeks[2] + dt.timedelta(days=6)).isoformat(),
        ),
    ]
    detail = (await http.get("/invoices/INV-DEMO-SHOP-000002")).json()
    assert detail["stop_count"] == 2 and detail["issued_on"] == nominal.date().isoformat()

    await schedule.backfill(window)  # the same nominal time again
    await schedule_when(
        http,
        lambda b: [r["status"] for r in b["recent_runs"]] == ["completed", "completed"],
        "ran the second backfill",
    )
    again = (await http.get("/invoices", params={"client_id": DEMO_CLIENT_ID})).json()
    assert again["total"] == 2


async def test_a_scheduled_run_that_cannot_price_tells_the_account_manager_and_pauses(
    stack,
) -> None:
    http, env = stack
    nominal = last_monday_two_am()
    tuesday = dt.datetime.combine(nominal.date() - dt.timedelta(days=6), dt.time(10), LONDON)
    await post_stops(http, stop("BAD-1", tuesday, zone="Z"))
    await weekly_from_today(http)
    schedule = env.client.get_schedule_handle("invoicing-demo-shop")

    await schedule.backfill(
        ScheduleBackfill(
            start_at=nominal - dt.timedelta(minutes=1), end_at=nominal + dt.timedelta(minutes=1)
        )
    )

    paused = await schedule_when(http, lambda b: b["paused"], "paused itself")
    [failed] = paused["recent_runs"]
    assert failed["status"] == "failed"
    run = (await http.get(f"/invoicing-runs/{failed['run_id']}")).json()
    assert run["failure"]["type"] == "InvoicePricingFailed"
    assert run["failure"]["problems"] == [
        "zone 'Z' is not in the agreement from 2026-01-01 (1 stop)"
    ]
    notice = await message_when(http, failed["run_id"], "invoicing/run_failed")
    assert notice["recipient"]["email"] == "avery.example.demo-shop@example.com"
    assert "zone 'Z' is not in the agreement" in notice["text_body"]
    assert (await http.get("/invoices")).json()["total"] == 0
