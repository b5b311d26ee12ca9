"""The invoicing run's activities on SQLite and PostgreSQL: the invoice priced and recorded
under the client's next number (gapless under concurrent runs), a repeat answered with the
first invoice, an empty period, pricing errors and overlaps refused for good, a scheduled run
continuing from the last invoice, the PDF read back with pypdf, the CSV's exact lines, the
unpaid-invoice case's input, and a failed-delivery case's attempt billed at the agreement's
fee."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pypdf
import pytest
from sqlmodel import col, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.invoicing import InvoicingActivities
from activities.records import RecordActivities
from core.db import SessionFactory
from core.documents import LocalDocumentStore
from schemas.activities import AttemptRecord
from schemas.cases import Address, Customer, FailedAttempt
from schemas.documents import DocumentKind
from schemas.enums import BillingCycle, FailureReason, RecordSource, StopOutcome
from schemas.invoicing import (
    PERIOD_OVERLAP,
    PRICING_FAILED,
    UNKNOWN_CLIENT,
    InvoiceCaseRequest,
    InvoiceDocumentsRequest,
    IssueInvoiceRequest,
    IssueInvoiceResult,
    RunOutcome,
)
from schemas.tables import (
    Client,
    DeliveryRecord,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    InvoiceStop,
    RateAgreementVersion,
)
from tests.activities.conftest import CLIENT_ID, DEPOT_ID, DRIVER_ID

NOV_1, NOV_30 = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
ISSUED_AT = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)


def agreement(**terms: Any) -> RateAgreementVersion:
    """The README's worked example: base 3.50, zone B 1.25, residential 0.75, failed 4.00,
    minimum 50.00, tax 0.20, GBP, monthly, net 30."""
    fields: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "effective_from": dt.date(2026, 1, 1),
        "currency": "GBP",
        "base_rate_per_stop": Decimal("3.50"),
        "zone_rates": {"A": "0.00", "B": "1.25"},
        "residential_surcharge": Decimal("0.75"),
        "failed_attempt_fee": Decimal("4.00"),
        "minimum_charge_per_invoice": Decimal("50.00"),
        "tax_rate": Decimal("0.20"),
        "billing_cycle": BillingCycle.MONTHLY,
        "payment_terms_days": 30,
        "created_by": "test",
    }
    fields.update(terms)
    return RateAgreementVersion(**fields)


def record(shipment: str, day: int, outcome: str = "delivered", **fields: Any) -> DeliveryRecord:
    values: dict[str, Any] = {
        "shipment_id": shipment,
        "attempt_number": 1,
        "client_id": CLIENT_ID,
        "depot_id": DEPOT_ID,
        "attempted_at": dt.datetime(2026, 11, day, 10, 0, tzinfo=dt.UTC),
        "outcome": StopOutcome(outcome),
        "zone": "B",
        "residential": True,
        "source": RecordSource.ROUTING,
    }
    values.update(fields)
    return DeliveryRecord(**values)


def worked_example() -> list[DeliveryRecord]:
    """Two residential stops in zone B, one in zone A, one failed attempt (new rows each
    time: an ORM row belongs to the database it was added to)."""
    return [
        record("SHP-1", 3),
        record("SHP-2", 4),
        record("SHP-3", 5, zone="A", residential=False),
        record("SHP-4", 6, outcome="failed", zone=None, residential=None),
    ]


async def add(sessions: SessionFactory, *rows: Any) -> None:
    async with sessions() as session:
        for row in rows:
            session.add(row)
            await session.flush()
        await session.commit()


@pytest.fixture
def documents(tmp_path: Path) -> LocalDocumentStore:
    return LocalDocumentStore(tmp_path / "documents")


@pytest.fixture
def invoicing(reference_data: SessionFactory, documents: LocalDocumentStore) -> InvoicingActivities:
    return InvoicingActivities(reference_data, documents, issuer="Casedesk Deliveries Ltd")


def issue_request(
    start: dt.date | None = NOV_1, end: dt.date | None = NOV_30, **fields: Any
) -> IssueInvoiceRequest:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "period_start": start,
        "period_end": end,
        "as_of": ISSUED_AT,
        "run_id": "invoicing-run-test",
    }
    values.update(fields)
    return IssueInvoiceRequest(**values)


async def issue(
    env: ActivityEnvironment, invoicing: InvoicingActivities, **fields: Any
) -> IssueInvoiceResult:
    return await env.run(invoicing.issue_invoice, issue_request(**fields))


async def rows(sessions: SessionFactory, model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.exec(select(model))).all())


# --- issue_invoice -------------------------------------------------------------------------


async def test_the_worked_example_is_recorded_as_invoice_one(
    invoicing, reference_data, activity_env
):
    await add(reference_data, agreement(), *worked_example())

    result = await issue(activity_env, invoicing)

    assert result.outcome is RunOutcome.ISSUED
    invoice = result.invoice
    assert invoice is not None
    assert invoice.invoice_id == "INV-ACME-000001"
    assert (str(invoice.subtotal), str(invoice.tax), str(invoice.total)) == (
        "50.00",
        "10.00",
        "60.00",
    )
    assert (invoice.issued_on, invoice.due_on) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert invoice.case_id == "unpaid-invoice-INV-ACME-000001"
    [row] = await rows(reference_data, Invoice)
    assert (row.stops_minor, row.minimum_charge_minor, row.total_minor) == (1850, 3150, 6000)
    assert row.tax_lines == [{"tax_rate": "0.20", "taxable": "50.00", "amount": "10.00"}]
    lines = sorted(await rows(reference_data, InvoiceLine), key=lambda line: line.position)
    assert [(line.kind, line.zone, line.quantity, line.amount_minor) for line in lines] == [
        ("delivered_stop", "A", 1, 350),
        ("delivered_stop", "B", 2, 1100),
        ("failed_attempt", None, 1, 400),
        ("minimum_charge", None, 1, 3150),
    ]
    stops = await rows(reference_data, InvoiceStop)
    assert sorted(stop.shipment_id for stop in stops) == ["SHP-1", "SHP-2", "SHP-3", "SHP-4"]


async def test_a_second_run_for_the_period_answers_with_the_first_invoice(
    invoicing, reference_data, activity_env
):
    await add(reference_data, agreement(), *worked_example())
    first = await issue(activity_env, invoicing)
    await add(reference_data, record("SHP-5", 20))  # a late stop changes nothing issued

    second = await issue(activity_env, invoicing, run_id="invoicing-run-again")

    assert second.outcome is RunOutcome.EXISTING
    assert second.invoice == first.invoice
    assert len(await rows(reference_data, Invoice)) == 1
    [counter] = await rows(reference_data, InvoiceCounter)
    assert counter.last_number == 1


async def test_a_period_without_stops_makes_no_invoice_and_says_so(
    invoicing, reference_data, activity_env
):
    await add(reference_data, agreement())

    result = await issue(activity_env, invoicing)

    assert result.outcome is RunOutcome.NO_RECORDS
    assert result.invoice is None
    assert (
        result.message == "no stops recorded for acme between 2026-11-01 and 2026-11-30: no invoice"
    )
    assert await rows(reference_data, Invoice) == []
    assert await rows(reference_data, InvoiceCounter) == []


async def test_a_period_that_cannot_be_priced_fails_for_good_naming_every_problem(
    invoicing, reference_data, activity_env
):
    await add(
        reference_data, agreement(), record("SHP-1", 3, zone="Z"), record("SHP-2", 4, zone="Q")
    )

    with pytest.raises(ApplicationError) as raised:
        await issue(activity_env, invoicing)

    assert raised.value.type == PRICING_FAILED and raised.value.non_retryable
    assert "zone 'Z' is not in the agreement from 2026-01-01 (1 stop)" in raised.value.message
    assert list(raised.value.details[0]) == [
        "zone 'Z' is not in the agreement from 2026-01-01 (1 stop)",
        "zone 'Q' is not in the agreement from 2026-01-01 (1 stop)",
    ]
    assert await rows(reference_data, Invoice) == []


async def test_stops_before_any_agreement_fail_the_run(invoicing, reference_data, activity_env):
    await add(reference_data, record("SHP-1", 3))

    with pytest.raises(ApplicationError) as raised:
        await issue(activity_env, invoicing)

    assert raised.value.type == PRICING_FAILED
    assert "the client has no rate agreement (1 stop)" in raised.value.message


async def test_an_unknown_client_fails_for_good(invoicing, activity_env):
    with pytest.raises(ApplicationError) as raised:
        await issue(activity_env, invoicing, client_id="nobody")

    assert raised.value.type == UNKNOWN_CLIENT and raised.value.non_retryable


async def test_a_period_overlapping_an_invoice_is_refused_and_takes_no_number(
    invoicing, reference_data, activity_env
):
    await add(reference_data, agreement(), *worked_example())
    await issue(activity_env, invoicing)

    with pytest.raises(ApplicationError) as raised:
        await issue(activity_env, invoicing, start=dt.date(2026, 11, 15), end=dt.date(2026, 12, 14))

    assert raised.value.type == PERIOD_OVERLAP and raised.value.non_retryable
    assert raised.value.details[0] == "INV-ACME-000001"
    [counter] = await rows(reference_data, InvoiceCounter)
    assert counter.last_number == 1


async def test_a_scheduled_run_bills_from_the_day_after_the_last_invoice(
    invoicing, reference_data, activity_env
):
    """Ops invoiced 1 to 10 November by hand; the schedule's run for November bills the
    11th to the 30th: no stop twice, none left out."""
    await add(reference_data, agreement(), record("SHP-1", 5), record("SHP-2", 20))
    await issue(activity_env, invoicing, end=dt.date(2026, 11, 10))

    scheduled = await issue(
        activity_env,
        invoicing,
        start=None,
        end=None,
        cycle=BillingCycle.MONTHLY,
        continue_from_last=True,
    )

    assert scheduled.outcome is RunOutcome.ISSUED
    assert (scheduled.period_start, scheduled.period_end) == (dt.date(2026, 11, 11), NOV_30)
    assert scheduled.invoice is not None and scheduled.invoice.invoice_id == "INV-ACME-000002"
    stops = {stop.shipment_id: stop.invoice_id for stop in await rows(reference_data, InvoiceStop)}
    assert stops == {"SHP-1": "INV-ACME-000001", "SHP-2": "INV-ACME-000002"}


async def test_a_scheduled_run_already_covered_invoices_nothing(
    invoicing, reference_data, activity_env
):
    await add(reference_data, agreement(), record("SHP-1", 5))
    await issue(activity_env, invoicing, end=dt.date(2026, 12, 1))

    scheduled = await issue(
        activity_env,
        invoicing,
        start=None,
        end=None,
        cycle=BillingCycle.MONTHLY,
        continue_from_last=True,
    )

    assert scheduled.outcome is RunOutcome.ALREADY_INVOICED
    assert (
        scheduled.message == "acme is invoiced through 2026-12-01: nothing to bill up to 2026-11-30"
    )


def eight_weeks() -> list[tuple[dt.date, dt.date]]:
    monday, week = dt.date(2026, 9, 7), dt.timedelta(days=7)
    return [(monday + i * week, monday + i * week + dt.timedelta(days=6)) for i in range(8)]


async def _run_concurrently(
    sessions: SessionFactory, documents: LocalDocumentStore, periods: list[tuple[dt.date, dt.date]]
) -> list[IssueInvoiceResult | ApplicationError]:
    """Every period's issue_invoice at once (on PostgreSQL: concurrent transactions on
    separate connections; on SQLite: one writer at a time, the others waiting)."""
    activities = InvoicingActivities(sessions, documents, issuer="casedesk")

    async def one(start: dt.date, end: dt.date) -> IssueInvoiceResult | ApplicationError:
        try:
            return await ActivityEnvironment().run(
                activities.issue_invoice, issue_request(start, end)
            )
        except ApplicationError as err:
            return err

    return list(await asyncio.gather(*(one(start, end) for start, end in periods)))


async def _a_stop_every_monday(sessions: SessionFactory) -> None:
    stops = [
        record(f"SHP-{i}", 1, attempted_at=dt.datetime.combine(start, dt.time(10), dt.UTC))
        for i, (start, _) in enumerate(eight_weeks())
    ]
    await add(sessions, agreement(minimum_charge_per_invoice=Decimal(0)), *stops)


async def test_concurrent_runs_for_one_client_number_without_gaps_or_repeats(
    reference_data, documents
):
    """Eight weeks invoiced at once by twelve runs (four of them repeats): eight invoices
    numbered 1 to 8, each week once, the counter at 8."""
    await _a_stop_every_monday(reference_data)
    weeks = eight_weeks()

    results = await _run_concurrently(reference_data, documents, [*weeks, *weeks[:4]])

    invoices = await rows(reference_data, Invoice)
    assert sorted(invoice.sequence for invoice in invoices) == list(range(1, 9))
    assert sorted((i.period_start, i.period_end) for i in invoices) == weeks
    assert {i.id for i in invoices} == {f"INV-ACME-{n:06d}" for n in range(1, 9)}
    [counter] = await rows(reference_data, InvoiceCounter)
    assert counter.last_number == 8
    outcomes = [r.outcome for r in results if isinstance(r, IssueInvoiceResult)]
    assert sorted(outcomes) == sorted([RunOutcome.ISSUED] * 8 + [RunOutcome.EXISTING] * 4)
    repeats = {
        r.invoice.invoice_id
        for r in results
        if isinstance(r, IssueInvoiceResult) and r.outcome is RunOutcome.EXISTING and r.invoice
    }
    assert len(repeats) == 4


async def test_refused_concurrent_runs_take_no_number(reference_data, documents):
    """Runs that overlap each other at once: whichever commits first wins, the others are
    refused, and the numbers taken are still 1 to N with the counter at N."""
    await _a_stop_every_monday(reference_data)
    weeks = eight_weeks()
    fortnights = [(weeks[i][0], weeks[i + 1][1]) for i in range(0, 8, 2)]
    shifted = [(weeks[i][0], weeks[i + 1][1]) for i in range(1, 7, 2)]

    results = await _run_concurrently(reference_data, documents, [*fortnights, *shifted, *weeks])

    invoices = await rows(reference_data, Invoice)
    assert sorted(invoice.sequence for invoice in invoices) == list(range(1, len(invoices) + 1))
    [counter] = await rows(reference_data, InvoiceCounter)
    assert counter.last_number == len(invoices)
    refused = [r for r in results if isinstance(r, ApplicationError)]
    assert {r.type for r in refused} == {PERIOD_OVERLAP}
    assert len(refused) + len(invoices) == len(results)
    billed = [stop.shipment_id for stop in await rows(reference_data, InvoiceStop)]
    assert sorted(billed) == sorted(f"SHP-{i}" for i in range(8))  # each once, none left out
    spans = sorted((i.period_start, i.period_end) for i in invoices)
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))


# --- documents -----------------------------------------------------------------------------


async def test_the_pdf_reads_back_with_the_number_the_lines_and_the_total(
    invoicing, reference_data, activity_env, documents
):
    await add(reference_data, agreement(), *worked_example())
    await issue(activity_env, invoicing)

    stored = await activity_env.run(
        invoicing.render_invoice_documents, InvoiceDocumentsRequest(invoice_id="INV-ACME-000001")
    )

    assert stored.pdf.kind is DocumentKind.INVOICE and stored.pdf.content_type == "application/pdf"
    text = "\n".join(
        page.extract_text()
        for page in pypdf.PdfReader(io.BytesIO(documents.get(stored.pdf.id))).pages
    )
    assert "INV-ACME-000001" in text
    assert "Acme Retail (client acme)" in text
    assert "Billing period Sun 1 Nov 2026 to Mon 30 Nov 2026 (UTC)" in text
    assert "Due date Thu 31 Dec 2026" in text
    assert "Minimum-charge uplift 31.50 GBP" in text
    assert "Tax at 20% on 50.00 GBP 10.00 GBP" in text
    assert "Total due 60.00 GBP" in text
    assert "Casedesk Deliveries Ltd" in text


async def test_the_csv_has_every_stop_with_exact_amounts(
    invoicing, reference_data, activity_env, documents
):
    await add(reference_data, agreement(), *worked_example())
    await issue(activity_env, invoicing)

    stored = await activity_env.run(
        invoicing.render_invoice_documents, InvoiceDocumentsRequest(invoice_id="INV-ACME-000001")
    )

    assert stored.csv.kind is DocumentKind.INVOICE_LINES and stored.csv.content_type == "text/csv"
    assert documents.get(stored.csv.id).decode().splitlines() == [
        "invoice_id,shipment_id,attempt_number,attempted_at,local_date,outcome,zone,residential,"
        "agreement_effective_from,base_rate,zone_rate,residential_surcharge,failed_attempt_fee,"
        "amount,currency",
        "INV-ACME-000001,SHP-1,1,2026-11-03T10:00:00Z,2026-11-03,delivered,B,true,2026-01-01,"
        "3.50,1.25,0.75,0.00,5.50,GBP",
        "INV-ACME-000001,SHP-2,1,2026-11-04T10:00:00Z,2026-11-04,delivered,B,true,2026-01-01,"
        "3.50,1.25,0.75,0.00,5.50,GBP",
        "INV-ACME-000001,SHP-3,1,2026-11-05T10:00:00Z,2026-11-05,delivered,A,false,2026-01-01,"
        "3.50,0.00,0.00,0.00,3.50,GBP",
        "INV-ACME-000001,SHP-4,1,2026-11-06T10:00:00Z,2026-11-06,failed,,,2026-01-01,"
        "0.00,0.00,0.00,4.00,4.00,GBP",
    ]
    rows_read = list(csv.DictReader(io.StringIO(documents.get(stored.csv.id).decode())))
    assert sum(Decimal(r["amount"]) for r in rows_read) == Decimal("18.50")


async def test_documents_are_stored_once_whoever_asks_again(
    invoicing, reference_data, activity_env
):
    await add(reference_data, agreement(), *worked_example())
    await issue(activity_env, invoicing)
    request = InvoiceDocumentsRequest(invoice_id="INV-ACME-000001")

    first = await activity_env.run(invoicing.render_invoice_documents, request)
    again = await activity_env.run(invoicing.render_invoice_documents, request)

    assert again == first
    [row] = await rows(reference_data, Invoice)
    assert (row.pdf_document_id, row.pdf_sha256) == (first.pdf.id, first.pdf.sha256)
    assert (row.csv_document_id, row.csv_sha256) == (first.csv.id, first.csv.sha256)


async def test_a_yen_invoice_has_no_minor_units_anywhere(
    invoicing, reference_data, activity_env, documents
):
    await add(
        reference_data,
        agreement(
            currency="JPY",
            base_rate_per_stop=Decimal("350"),
            zone_rates={},
            residential_surcharge=Decimal("0"),
            failed_attempt_fee=Decimal("400"),
            minimum_charge_per_invoice=Decimal("0"),
            tax_rate=Decimal("0.10"),
        ),
        record("SHP-1", 3),
        record("SHP-2", 4),
    )
    result = await issue(activity_env, invoicing)
    assert result.invoice is not None
    assert (str(result.invoice.subtotal), str(result.invoice.tax), str(result.invoice.total)) == (
        "700",
        "70",
        "770",
    )

    stored = await activity_env.run(
        invoicing.render_invoice_documents, InvoiceDocumentsRequest(invoice_id="INV-ACME-000001")
    )

    text = pypdf.PdfReader(io.BytesIO(documents.get(stored.pdf.id))).pages[0].extract_text()
    assert "Total due 770 JPY" in text
    assert ",350,0,0,0,350,JPY" in documents.get(stored.csv.id).decode()


# --- the case ------------------------------------------------------------------------------


async def test_the_case_input_snapshots_the_clients_dunning_policy(
    invoicing, reference_data, activity_env
):
    await add(reference_data, agreement(), *worked_example())
    async with reference_data() as session:
        client = await session.get(Client, CLIENT_ID)
        assert client is not None
        client.policy_overrides = {"unpaid_invoice": {"grace_after_pause": "P3D"}}
        session.add(client)
        await session.commit()
    await issue(activity_env, invoicing)
    stored = await activity_env.run(
        invoicing.render_invoice_documents, InvoiceDocumentsRequest(invoice_id="INV-ACME-000001")
    )

    case = await activity_env.run(
        invoicing.unpaid_invoice_opening,
        InvoiceCaseRequest(invoice_id="INV-ACME-000001", invoice_pdf=stored.pdf),
    )

    assert case.invoice_id == "INV-ACME-000001" and case.client_name == "Acme Retail"
    assert (str(case.amount), case.currency, case.minor_units) == ("60.00", "GBP", 2)
    assert (case.issued_on, case.due_on) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert case.invoice_pdf == stored.pdf
    assert case.policy.grace_after_pause == dt.timedelta(days=3)
    assert case.opened_by == "invoicing:invoicing-run-test"


# --- from a failed-delivery case to the invoice --------------------------------------------


async def test_a_failed_delivery_cases_attempt_is_billed_at_the_agreements_fee(
    invoicing, reference_data, activity_env
):
    """The case's activity records the attempt (its policy quotes 17.00); the invoice bills
    it as a failed-attempt line at the rate agreement's 4.00."""
    await add(reference_data, agreement(minimum_charge_per_invoice=Decimal(0)))
    await activity_env.run(
        RecordActivities(reference_data).record_failed_attempt,
        AttemptRecord(
            case_id="failed-delivery-SHP-9",
            shipment_id="SHP-9",
            client_id=CLIENT_ID,
            depot_id=DEPOT_ID,
            customer=Customer(name="Ann Example", email="ann@example.com"),
            address=Address(line1="1 Main St", city="London", postal_code="E1 1AA", country="GB"),
            attempt=FailedAttempt(
                attempt_number=1,
                reason=FailureReason.NOT_HOME,
                driver_id=DRIVER_ID,
                attempted_at=dt.datetime(2026, 11, 12, 9, 30, tzinfo=dt.UTC),
            ),
            fee_cents=1700,
            currency="GBP",
        ),
    )

    result = await issue(activity_env, invoicing)

    assert result.invoice is not None and str(result.invoice.subtotal) == "4.00"
    [line] = await rows(reference_data, InvoiceLine)
    assert (line.kind, line.quantity, line.unit_price_minor, line.amount_minor) == (
        "failed_attempt",
        1,
        400,
        400,
    )
    async with reference_data() as session:
        [stop] = (
            await session.exec(select(InvoiceStop).where(col(InvoiceStop.shipment_id) == "SHP-9"))
        ).all()
    assert (stop.outcome, stop.failed_attempt_fee_minor) == (StopOutcome.FAILED, 400)
