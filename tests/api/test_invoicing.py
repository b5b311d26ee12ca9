"""Invoicing over HTTP on both databases (the real app, the real worker on the time-skipping
server): a run issues the invoice (201), a repeat answers with it (200), an empty period says
so, every bad input is a 422 naming its field, a period that cannot be priced is a 422 with
its problems, an overlap a 409; the invoices list and filter by status, the detail shows the
lines and the case, the PDF and the CSV download as attachments; the run's own page."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pypdf
import pytest

from api.deps import now
from core.db import SessionFactory
from schemas.enums import BillingCycle, RecordSource, StopOutcome
from schemas.tables import DeliveryRecord, RateAgreementVersion
from tests.api.conftest import CLIENT_ID, DEPOT_ID, Api, assert_problem
from tests.api.invoices import add_billing_contact

NOV = {"period_start": "2026-11-01", "period_end": "2026-11-30"}


@pytest.fixture
async def billing(sessions: SessionFactory, reference_data: None) -> SessionFactory:
    """The client's billing contact, its GBP agreement (the README's worked example) and
    four stops in November 2026."""
    await add_billing_contact(sessions)
    async with sessions() as session:
        session.add(
            RateAgreementVersion(
                client_id=CLIENT_ID,
                effective_from=dt.date(2026, 1, 1),
                currency="GBP",
                base_rate_per_stop=Decimal("3.50"),
                zone_rates={"A": "0.00", "B": "1.25"},
                residential_surcharge=Decimal("0.75"),
                failed_attempt_fee=Decimal("4.00"),
                minimum_charge_per_invoice=Decimal("50.00"),
                tax_rate=Decimal("0.20"),
                billing_cycle=BillingCycle.MONTHLY,
                payment_terms_days=30,
                created_by="test",
            )
        )
        for shipment, day, outcome, zone, residential in [
            ("SHP-1", 3, "delivered", "B", True),
            ("SHP-2", 4, "delivered", "B", True),
            ("SHP-3", 5, "delivered", "A", False),
            ("SHP-4", 6, "failed", None, None),
        ]:
            session.add(
                DeliveryRecord(
                    shipment_id=shipment,
                    attempt_number=1,
                    client_id=CLIENT_ID,
                    depot_id=DEPOT_ID,
                    attempted_at=dt.datetime(2026, 11, day, 10, tzinfo=dt.UTC),
                    outcome=StopOutcome(outcome),
                    zone=zone,
                    residential=residential,
                    source=RecordSource.ROUTING,
                )
            )
        await session.commit()
    return sessions


async def run(api: Api, role: str = "ops", **fields: Any) -> Any:
    return await api.post(
        "/invoicing-runs", json={"client_id": CLIENT_ID, **NOV, **fields}, role=role
    )


async def test_a_run_issues_the_invoice_and_opens_its_case(api, billing):
    response = await run(api)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["outcome"] == "issued" and body["status"] == "completed"
    assert body["run_id"] == "invoicing-run-acme-2026-11-01-2026-11-30"
    assert response.headers["Location"] == "/invoices/INV-ACME-000001"
    invoice = body["invoice"]
    assert invoice["invoice_id"] == "INV-ACME-000001"
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("50.00", "10.00", "60.00")
    assert (invoice["stops_total"], invoice["minimum_charge"]) == ("18.50", "31.50")
    assert [
        (line["kind"], line["zone"], line["quantity"], line["amount"]) for line in invoice["lines"]
    ] == [
        ("delivered_stop", "A", 1, "3.50"),
        ("delivered_stop", "B", 2, "11.00"),
        ("failed_attempt", None, 1, "4.00"),
        ("minimum_charge", None, 1, "31.50"),
    ]
    assert invoice["case_id"] == "unpaid-invoice-INV-ACME-000001"
    assert invoice["pdf"]["download_url"] == "/invoices/INV-ACME-000001/pdf"
    assert body["emailed"] is True
    assert invoice["email"]["status"] == "sent"
    assert invoice["email"]["recipient_email"] == "payables@acme.example"

    case = await api.wait_for("unpaid-invoice-INV-ACME-000001", "awaiting_payment")
    assert case["details"]["amount"] == "60.00"
    assert [d["kind"] for d in case["documents"]] == ["invoice"]
    messages = (await api.get("/messages", params={"case_id": case["case_id"]})).json()["items"]
    [sent] = [m for m in messages if m["template"] == "invoicing/invoice_issued"]
    assert [a["name"] for a in sent["attachments"]] == [
        "INV-ACME-000001.pdf",
        "INV-ACME-000001.csv",
    ]
    detail = (await api.get("/invoices/INV-ACME-000001")).json()
    assert detail["status"] == "open" and detail["case_status"] == "awaiting_payment"
    assert detail["balance"] == "60.00"


async def test_the_same_period_again_answers_with_the_first_invoice(api, billing):
    first = await run(api)
    assert first.status_code == 201, first.text

    again = await run(api)

    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "existing"
    assert again.json()["invoice"]["invoice_id"] == "INV-ACME-000001"
    listed = (await api.get("/invoices", params={"client_id": CLIENT_ID})).json()
    assert listed["total"] == 1


async def test_a_period_without_stops_makes_no_invoice(api, billing):
    response = await run(api, period_start="2026-10-01", period_end="2026-10-31")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "no_records" and body["invoice"] is None
    assert body["message"] == (
        "no stops recorded for acme between 2026-10-01 and 2026-10-31: no invoice"
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"client_id": "nobody"}, "client_id"),
        ({"period_start": "2026-11-30", "period_end": "2026-11-01"}, "period_end"),
        ({"period_start": "2025-01-01", "period_end": "2026-11-30"}, "period_end"),
        ({"period_start": "2026-11-01", "period_end": "2099-11-30"}, "period_end"),
        ({"period_start": "30/11/2026"}, "period_start"),
        ({"extra": "x"}, "extra"),
    ],
)
async def test_bad_runs_are_422_naming_the_field(api, billing, fields, field):
    assert_problem(await run(api, **fields), 422, field)


async def test_a_run_needs_the_ops_role(api, billing):
    assert_problem(await run(api, role="viewer"), 403)


async def test_a_period_that_cannot_be_priced_is_422_with_its_problems(api, billing, sessions):
    async with sessions() as session:
        session.add(
            DeliveryRecord(
                shipment_id="SHP-Z",
                attempt_number=1,
                client_id=CLIENT_ID,
                depot_id=DEPOT_ID,
                attempted_at=dt.datetime(2026, 11, 9, 10, tzinfo=dt.UTC),
                outcome=StopOutcome.DELIVERED,
                zone="Z",
                residential=False,
                source=RecordSource.ROUTING,
            )
        )
        await session.commit()

    body = assert_problem(await run(api), 422)

    assert body["type"] == "urn:casedesk:problem:invoice-not-priceable"
    assert body["failure_type"] == "InvoicePricingFailed"
    assert body["problems"] == ["zone 'Z' is not in the agreement from 2026-01-01 (1 stop)"]
    page = (await api.get(f"/invoicing-runs/{body['run_id']}")).json()
    assert page["status"] == "failed"
    assert page["failure"]["type"] == "InvoicePricingFailed"
    assert (await api.get("/invoices")).json()["total"] == 0


async def test_a_period_overlapping_an_invoice_is_409(api, billing):
    assert (await run(api)).status_code == 201

    body = assert_problem(await run(api, period_start="2026-11-15", period_end="2026-11-20"), 409)

    assert body["type"] == "urn:casedesk:problem:period-overlaps-invoice"
    assert "INV-ACME-000001" in body["detail"]


async def test_invoices_filter_by_client_and_status(api, billing):
    assert (await run(api)).status_code == 201
    await api.wait_for("unpaid-invoice-INV-ACME-000001", "awaiting_payment")

    open_ = (await api.get("/invoices", params={"status": "open"})).json()
    paid = (await api.get("/invoices", params={"status": "paid"})).json()
    other = (await api.get("/invoices", params={"client_id": "other"})).json()

    assert [i["invoice_id"] for i in open_["items"]] == ["INV-ACME-000001"]
    assert open_["items"][0]["total"] == "60.00" and open_["total"] == 1
    assert (paid["total"], other["total"]) == (0, 0)
    assert_problem(await api.get("/invoices", params={"status": "lost"}), 422, "status")


async def test_a_paid_invoice_reads_paid(api, billing):
    assert (await run(api)).status_code == 201
    case_id = "unpaid-invoice-INV-ACME-000001"
    await api.wait_for(case_id, "awaiting_payment")
    paid = await api.post(
        f"/cases/{case_id}/payments",
        json={"amount": "60.00", "paid_on": "2026-12-01", "reference": "BACS-1"},
    )
    assert paid.status_code == 200, paid.text
    await api.wait_for(case_id, "closed")

    listed = await api.poll(
        "/invoices?status=paid", lambda b: b["total"] == 1, "listed the invoice paid"
    )

    assert listed["items"][0]["status"] == "paid"


async def test_the_pdf_and_the_csv_download_as_attachments(api, billing):
    assert (await run(api)).status_code == 201

    pdf = await api.get("/invoices/INV-ACME-000001/pdf")
    lines = await api.get("/invoices/INV-ACME-000001/csv")

    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'attachment; filename="INV-ACME-000001.pdf"'
    assert pdf.headers["x-content-type-options"] == "nosniff"
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.content)).pages)
    assert "INV-ACME-000001" in text and "Total due 60.00 GBP" in text
    assert lines.headers["content-type"].startswith("text/csv")
    assert lines.headers["content-disposition"] == 'attachment; filename="INV-ACME-000001.csv"'
    rows = lines.text.splitlines()
    assert len(rows) == 5 and rows[0].startswith("invoice_id,shipment_id,")


async def test_unknown_invoices_and_runs_are_404(api, billing):
    assert_problem(await api.get("/invoices/INV-NOPE-000001"), 404)
    assert_problem(await api.get("/invoices/INV-NOPE-000001/pdf"), 404)
    assert_problem(await api.get("/invoicing-runs/invoicing-run-acme-2020-01-01-2020-01-31"), 404)
    assert_problem(await api.get("/invoicing-runs/failed-delivery-SHP-1"), 404)


async def test_an_unknown_clients_schedule_is_404(api, billing):
    # (Schedules themselves need a real dev server: tests/test_invoicing_schedules.py.)
    assert_problem(await api.get("/clients/nobody/invoicing"), 404)
    assert_problem(await api.post("/clients/nobody/invoicing/pause", json={"note": "x"}), 404)


async def test_a_run_slower_than_the_wait_is_202_with_its_page(api, billing, app):
    app.state.timeouts = dataclasses.replace(app.state.timeouts, run=dt.timedelta(0))

    response = await run(api)

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "running" and response.json()["invoice"] is None
    page = response.headers["Location"]
    assert page == "/invoicing-runs/invoicing-run-acme-2026-11-01-2026-11-30"
    done = await api.poll(page, lambda b: b["status"] == "completed", "completed")
    assert done["outcome"] == "issued"
    assert done["invoice"]["invoice_id"] == "INV-ACME-000001"


async def test_a_stop_reported_after_its_period_was_invoiced_is_kept_and_flagged(api, billing, app):
    assert (await run(api)).status_code == 201

    async def early_december() -> dt.datetime:  # the API's clock, so November stops are recent
        return dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)

    app.dependency_overrides[now] = early_december
    stop = {
        "client_id": CLIENT_ID,
        "depot_id": DEPOT_ID,
        "outcome": "delivered",
        "zone": "A",
        "residential": False,
        "attempt_number": 1,
    }

    response = await api.post(
        "/deliveries",
        json=[
            {**stop, "shipment_id": "LATE-1", "attempted_at": "2026-11-20T10:00:00+00:00"},
            {**stop, "shipment_id": "NEW-1", "attempted_at": "2026-12-01T10:00:00+00:00"},
        ],
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["new"] == 2 and body["not_billed_total"] == 1
    (late,) = body["not_billed"]
    assert (late["row"], late["field"]) == (1, "attempted_at")
    assert "already invoiced as INV-ACME-000001" in late["message"]
