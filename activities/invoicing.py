"""The invoicing run's activities: price the period and record the invoice under the client's
next number; render and store its PDF and CSV; build the unpaid-invoice case's input; keep the
client's schedule in step with its agreement.

Every one is idempotent, so a retried activity or a second run for the same period finds what
the first one did: the invoice for (client, period) is unique, the documents are stored once
(the first stored wins), and the case's input is the same for the same invoice.

**Gapless numbering.** The client's counter row is bumped (`UPDATE … SET last_number =
last_number + 1 RETURNING`) as the first write of the transaction that inserts the invoice.
On PostgreSQL the row lock makes a concurrent run for the same client wait until this one
commits or rolls back, then number after it; SQLite has a single writer, and the counter is
the transaction's first statement, so it takes the write lock before reading anything. A
transaction that finds the period invoiced meanwhile, or an overlap, rolls back and its number
was never taken.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.client import Client as TemporalClient
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.invoice_documents import (
    InvoiceSheet,
    SheetLine,
    SheetStop,
    SheetTax,
    render_invoice_csv,
    render_invoice_pdf,
)
from activities.sql import insert_ignore
from core.db import SessionFactory
from core.documents import DocumentStore
from core.invoicing_schedules import sync_client_schedule
from core.uploads import CSV, PDF
from schemas.case_types import UNPAID_INVOICE
from schemas.documents import DocumentKind, DocumentRef
from schemas.invoice_cases import InvoiceCaseRefused, InvoiceClient, unpaid_invoice_input
from schemas.invoices import UnpaidInvoiceInput
from schemas.invoicing import (
    CASE_REFUSED,
    NUMBER_UNAVAILABLE,
    PERIOD_OVERLAP,
    PRICING_FAILED,
    UNKNOWN_CLIENT,
    UNKNOWN_INVOICE,
    InvoiceCaseRequest,
    InvoiceDocuments,
    InvoiceDocumentsRequest,
    InvoiceFacts,
    IssueInvoiceRequest,
    IssueInvoiceResult,
    RunOutcome,
    ScheduleSyncRequest,
    cycle_period,
    from_minor,
    invoice_number,
    number_problem,
    to_minor,
)
from schemas.pricing import BillableStop, InvoiceDraft, PricingError, period_bounds, price_period
from schemas.rates import RateAgreement
from schemas.tables import (
    Client,
    DeliveryRecord,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    InvoiceStop,
    RateAgreementVersion,
)


def _permanent(message: str, kind: str, *details: Any) -> ApplicationError:
    return ApplicationError(message, *details, type=kind, non_retryable=True)


def document_refs(invoice: Invoice) -> tuple[DocumentRef, DocumentRef] | None:
    """The stored PDF and CSV of an invoice, as references (None until they are stored)."""
    if not (
        invoice.pdf_document_id
        and invoice.pdf_sha256
        and invoice.pdf_size_bytes
        and invoice.csv_document_id
        and invoice.csv_sha256
        and invoice.csv_size_bytes
        and invoice.documents_stored_at
    ):
        return None
    stored_at = invoice.documents_stored_at
    return (
        DocumentRef(
            id=invoice.pdf_document_id,
            kind=DocumentKind.INVOICE,
            sha256=invoice.pdf_sha256,
            content_type=PDF,
            size_bytes=invoice.pdf_size_bytes,
            original_name_sanitized=f"{invoice.id}.pdf",
            stored_at=stored_at,
        ),
        DocumentRef(
            id=invoice.csv_document_id,
            kind=DocumentKind.INVOICE_LINES,
            sha256=invoice.csv_sha256,
            content_type=CSV,
            size_bytes=invoice.csv_size_bytes,
            original_name_sanitized=f"{invoice.id}.csv",
            stored_at=stored_at,
        ),
    )


def facts(invoice: Invoice, client_name: str) -> InvoiceFacts:
    units = invoice.minor_units
    refs = document_refs(invoice)
    return InvoiceFacts(
        invoice_id=invoice.id,
        client_id=invoice.client_id,
        client_name=client_name,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        currency=invoice.currency,
        minor_units=units,
        subtotal=from_minor(invoice.subtotal_minor, units),
        tax=from_minor(invoice.tax_minor, units),
        total=from_minor(invoice.total_minor, units),
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        payment_terms_days=invoice.payment_terms_days,
        stop_count=invoice.stop_count,
        case_id=invoice.case_id,
        message_key=invoice.message_key,
        pdf=refs[0] if refs else None,
        csv=refs[1] if refs else None,
    )


def invoice_case_id(invoice_id: str) -> str:
    return UNPAID_INVOICE.case_type.workflow_id(invoice_id)


def invoice_message_key(invoice_id: str) -> str:
    """The invoice email's outbox key: the case's id and the step (one email per invoice)."""
    return f"{invoice_case_id(invoice_id)}/invoice"


class InvoicingActivities:
    """Built once in worker.py with the session factory, the document store, the Temporal
    client (the schedules) and who the invoices are from."""

    def __init__(
        self,
        sessions: SessionFactory,
        documents: DocumentStore,
        *,
        issuer: str,
        temporal: TemporalClient | None = None,
        task_queue: str = "casedesk",
    ) -> None:
        self._sessions = sessions
        self._documents = documents
        self._issuer = issuer
        self._temporal = temporal
        self._task_queue = task_queue

    # --- issue ---------------------------------------------------------------------------

    @activity.defn
    async def issue_invoice(self, request: IssueInvoiceRequest) -> IssueInvoiceResult:
        """The invoice for the client and period: the existing one, or a new one priced now;
        no invoice for a period without stops. Pricing problems, an overlap with another
        invoice and an id that cannot be numbered are permanent failures."""
        async with heartbeating():
            return await self._issue_invoice(request)

    async def _issue_invoice(self, request: IssueInvoiceRequest) -> IssueInvoiceResult:
        async with self._sessions() as session:
            client = await session.get(Client, request.client_id)
            if client is None:
                raise _permanent(f"unknown client '{request.client_id}'", UNKNOWN_CLIENT)
            problem = number_problem(client.id)
            if problem:
                raise _permanent(problem, NUMBER_UNAVAILABLE)
            start, end = self._period(request, client.timezone)
            existing = await _invoice_for(session, client.id, start, end)
            if existing is not None:
                return _existing(existing, client.name)
            if request.continue_from_last:
                last_end = (
                    await session.exec(
                        select(func.max(Invoice.period_end)).where(
                            col(Invoice.client_id) == client.id
                        )
                    )
                ).one()
                if last_end is not None and last_end >= end:
                    return IssueInvoiceResult(
                        outcome=RunOutcome.ALREADY_INVOICED,
                        period_start=start,
                        period_end=end,
                        message=f"{client.id} is invoiced through {last_end.isoformat()}: "
                        f"nothing to bill up to {end.isoformat()}",
                    )
                if last_end is not None:
                    start = last_end + dt.timedelta(days=1)
            overlapping = await _overlapping(session, client.id, start, end)
            if overlapping is not None:
                raise _overlap(client.id, start, end, overlapping)
            draft = await self._price(session, client, start, end)
        if draft.is_empty:
            return IssueInvoiceResult(
                outcome=RunOutcome.NO_RECORDS,
                period_start=start,
                period_end=end,
                message=f"no stops recorded for {client.id} between {start.isoformat()} and "
                f"{end.isoformat()}: no invoice",
            )
        issued_on = request.as_of.astimezone(ZoneInfo(client.timezone)).date()
        return await self._record(client, draft, issued_on, request.run_id)

    @staticmethod
    def _period(request: IssueInvoiceRequest, timezone: str) -> tuple[dt.date, dt.date]:
        if request.period_start is not None and request.period_end is not None:
            return request.period_start, request.period_end
        assert request.cycle is not None  # InvoicingRunInput requires a period or a cycle
        return cycle_period(request.cycle, request.as_of, timezone)

    @staticmethod
    async def _price(
        session: AsyncSession, client: Client, start: dt.date, end: dt.date
    ) -> InvoiceDraft:
        versions = await session.exec(
            select(RateAgreementVersion)
            .where(col(RateAgreementVersion.client_id) == client.id)
            .order_by(col(RateAgreementVersion.effective_from))
        )
        agreements = [RateAgreement.model_validate(v, from_attributes=True) for v in versions]
        low, high = period_bounds(start, end, client.timezone)
        records = await session.exec(
            select(DeliveryRecord).where(
                col(DeliveryRecord.client_id) == client.id,
                col(DeliveryRecord.attempted_at) >= low,
                col(DeliveryRecord.attempted_at) < high,
            )
        )
        stops = [BillableStop.model_validate(row) for row in records]
        period = f"{start.isoformat()} to {end.isoformat()}"
        try:
            return price_period(
                stops=stops,
                agreements=agreements,
                timezone=client.timezone,
                period_start=start,
                period_end=end,
            )
        except PricingError as err:
            raise _permanent(
                f"cannot invoice {client.id} for {period}: {err}", PRICING_FAILED, err.problems
            ) from None
        except ValueError as err:  # e.g. the client's time zone is not one we know
            raise _permanent(
                f"cannot invoice {client.id} for {period}: {err}", PRICING_FAILED, [str(err)]
            ) from None

    async def _record(
        self, client: Client, draft: InvoiceDraft, issued_on: dt.date, run_id: str
    ) -> IssueInvoiceResult:
        start, end = draft.period_start, draft.period_end
        async with self._sessions() as session:
            try:
                # The counter first: on SQLite this write takes the database's write lock
                # before anything is read, on PostgreSQL it locks the client's counter row.
                await session.exec(
                    insert_ignore(session, InvoiceCounter, "client_id").values(
                        client_id=client.id, last_number=0
                    )
                )
                bumped = await session.exec(
                    update(InvoiceCounter)
                    .where(col(InvoiceCounter.client_id) == client.id)
                    .values(last_number=col(InvoiceCounter.last_number) + 1)
                    .returning(col(InvoiceCounter.last_number))
                )
                sequence = int(bumped.scalar_one())
                existing = await _invoice_for(session, client.id, start, end)
                if existing is not None:  # another run recorded it while this one priced
                    answer = _existing(existing, client.name)  # read before the rollback
                    await session.rollback()  # the number goes back: nothing took it
                    return answer
                overlapping = await _overlapping(session, client.id, start, end)
                if overlapping is not None:
                    refusal = _overlap(client.id, start, end, overlapping)
                    await session.rollback()
                    raise refusal
                invoice = _invoice_row(client, draft, sequence, issued_on, run_id)
                session.add(invoice)
                await session.flush()
                await _insert_lines(session, invoice, draft)
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return await self._after_conflict(client, start, end)
        activity.logger.info(
            "invoice %s issued for %s (%s to %s)", invoice.id, client.id, start, end
        )
        return IssueInvoiceResult(
            outcome=RunOutcome.ISSUED,
            period_start=start,
            period_end=end,
            message=f"invoice {invoice.id} issued: {len(draft.stop_lines)} stops, "
            f"{draft.total} {draft.currency}",
            invoice=facts(invoice, client.name),
        )

    async def _after_conflict(
        self, client: Client, start: dt.date, end: dt.date
    ) -> IssueInvoiceResult:
        """A unique constraint refused the insert: the period was recorded meanwhile (the
        answer), or the number is another client's (client ids that differ only in case make
        the same number). Anything else is retried: the checks run again."""
        async with self._sessions() as session:
            existing = await _invoice_for(session, client.id, start, end)
            if existing is not None:
                return _existing(existing, client.name)
            counter = await session.get(InvoiceCounter, client.id)
            taken = invoice_number(client.id, (counter.last_number if counter else 0) + 1)
            owner = await session.get(Invoice, taken)
        if owner is not None and owner.client_id != client.id:
            raise _permanent(
                f"invoice number {taken} is taken by client '{owner.client_id}': client ids "
                "that differ only in case cannot both be invoiced",
                NUMBER_UNAVAILABLE,
            )
        raise ApplicationError(f"invoice for {client.id} conflicted; retrying")

    # --- documents -----------------------------------------------------------------------

    @activity.defn
    async def render_invoice_documents(self, request: InvoiceDocumentsRequest) -> InvoiceDocuments:
        """The PDF and the CSV, rendered from the invoice as recorded and stored; an invoice
        whose documents are stored already gets those (the first stored wins)."""
        async with heartbeating():
            return await self._render_invoice_documents(request)

    async def _render_invoice_documents(self, request: InvoiceDocumentsRequest) -> InvoiceDocuments:
        async with self._sessions() as session:
            invoice = await session.get(Invoice, request.invoice_id)
            if invoice is None:
                raise _permanent(f"no invoice {request.invoice_id}", UNKNOWN_INVOICE)
            stored = document_refs(invoice)
            if stored is not None:
                return InvoiceDocuments(pdf=stored[0], csv=stored[1])
            sheet = await self._sheet(session, invoice)
        pdf, lines_csv = await asyncio.to_thread(
            lambda: (render_invoice_pdf(sheet), render_invoice_csv(sheet))
        )
        pdf_ref = await asyncio.to_thread(
            self._documents.put_generated,
            pdf,
            kind=DocumentKind.INVOICE,
            content_type=PDF,
            name=f"{invoice.id}.pdf",
        )
        csv_ref = await asyncio.to_thread(
            self._documents.put_generated,
            lines_csv,
            kind=DocumentKind.INVOICE_LINES,
            content_type=CSV,
            name=f"{invoice.id}.csv",
        )
        async with self._sessions() as session:
            await session.exec(
                update(Invoice)
                .where(col(Invoice.id) == invoice.id, col(Invoice.pdf_document_id).is_(None))
                .values(
                    pdf_document_id=pdf_ref.id,
                    pdf_sha256=pdf_ref.sha256,
                    pdf_size_bytes=pdf_ref.size_bytes,
                    csv_document_id=csv_ref.id,
                    csv_sha256=csv_ref.sha256,
                    csv_size_bytes=csv_ref.size_bytes,
                    documents_stored_at=pdf_ref.stored_at,
                )
            )
            await session.commit()
            current = await session.get(Invoice, invoice.id, populate_existing=True)
            assert current is not None
            refs = document_refs(current)
        assert refs is not None
        return InvoiceDocuments(pdf=refs[0], csv=refs[1])

    async def _sheet(self, session: AsyncSession, invoice: Invoice) -> InvoiceSheet:
        units = invoice.minor_units
        client = await session.get(Client, invoice.client_id)
        lines = await session.exec(
            select(InvoiceLine)
            .where(col(InvoiceLine.invoice_id) == invoice.id)
            .order_by(col(InvoiceLine.position))
        )
        stops = await session.exec(
            select(InvoiceStop)
            .where(col(InvoiceStop.invoice_id) == invoice.id)
            .order_by(
                col(InvoiceStop.attempted_at),
                col(InvoiceStop.shipment_id),
                col(InvoiceStop.attempt_number),
            )
        )
        return InvoiceSheet(
            invoice_id=invoice.id,
            client_id=invoice.client_id,
            client_name=client.name if client else invoice.client_id,
            timezone=invoice.timezone,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            issued_on=invoice.issued_on,
            due_on=invoice.due_on,
            payment_terms_days=invoice.payment_terms_days,
            currency=invoice.currency,
            lines=[
                SheetLine(
                    kind=line.kind,
                    description=line.description,
                    zone=line.zone,
                    quantity=line.quantity,
                    unit_price=from_minor(line.unit_price_minor, units),
                    amount=from_minor(line.amount_minor, units),
                )
                for line in lines
            ],
            stops_total=from_minor(invoice.stops_minor, units),
            minimum_charge=from_minor(invoice.minimum_charge_minor, units),
            subtotal=from_minor(invoice.subtotal_minor, units),
            taxes=[
                SheetTax(
                    tax_rate=Decimal(tax["tax_rate"]),
                    taxable=Decimal(tax["taxable"]),
                    amount=Decimal(tax["amount"]),
                )
                for tax in invoice.tax_lines
            ],
            tax=from_minor(invoice.tax_minor, units),
            total=from_minor(invoice.total_minor, units),
            stops=[
                SheetStop(
                    shipment_id=stop.shipment_id,
                    attempt_number=stop.attempt_number,
                    attempted_at=stop.attempted_at,
                    local_date=stop.local_date,
                    outcome=stop.outcome.value,
                    zone=stop.zone,
                    residential=stop.residential,
                    agreement_effective_from=stop.agreement_effective_from,
                    base_rate=from_minor(stop.base_rate_minor, units),
                    zone_rate=from_minor(stop.zone_rate_minor, units),
                    residential_surcharge=from_minor(stop.residential_surcharge_minor, units),
                    failed_attempt_fee=from_minor(stop.failed_attempt_fee_minor, units),
                    amount=from_minor(stop.amount_minor, units),
                )
                for stop in stops
            ],
            issuer=self._issuer,
        )

    # --- the case ------------------------------------------------------------------------

    @activity.defn
    async def unpaid_invoice_opening(self, request: InvoiceCaseRequest) -> UnpaidInvoiceInput:
        """The unpaid-invoice case's input: the invoice's total and dates, its PDF, and the
        client's dunning policy as it is now (the snapshot the case runs on)."""
        async with self._sessions() as session:
            invoice = await session.get(Invoice, request.invoice_id)
            if invoice is None:
                raise _permanent(f"no invoice {request.invoice_id}", UNKNOWN_INVOICE)
            row = await session.get(Client, invoice.client_id)
        client = (
            InvoiceClient(
                id=row.id,
                name=row.name,
                policy_overrides=row.policy_overrides,
                timezone=row.timezone,
            )
            if row is not None
            else None
        )
        try:
            return unpaid_invoice_input(
                invoice_id=invoice.id,
                client_id=invoice.client_id,
                client=client,
                amount=from_minor(invoice.total_minor, invoice.minor_units),
                currency=invoice.currency,
                issued_on=invoice.issued_on,
                due_on=invoice.due_on,
                invoice_pdf=request.invoice_pdf,
                delivery_problem=request.delivery_problem,
                opened_by=f"invoicing:{invoice.run_id}",
            )
        except InvoiceCaseRefused as refused:
            raise _permanent(
                f"the unpaid-invoice case for {invoice.id} cannot be opened: {refused}",
                CASE_REFUSED,
            ) from None

    # --- the schedule --------------------------------------------------------------------

    @activity.defn
    async def sync_invoicing_schedule(self, request: ScheduleSyncRequest) -> None:
        """The client's schedule follows the agreement in force today (its billing cycle) and
        the client's time zone; a paused schedule stays paused."""
        if self._temporal is None:
            raise _permanent("no Temporal client configured for the schedules", UNKNOWN_CLIENT)
        await sync_client_schedule(
            self._temporal,
            self._sessions,
            request.client_id,
            task_queue=self._task_queue,
            now=dt.datetime.now(dt.UTC),
        )


# --- rows ----------------------------------------------------------------------------------


async def _invoice_for(
    session: AsyncSession, client_id: str, start: dt.date, end: dt.date
) -> Invoice | None:
    statement = select(Invoice).where(
        col(Invoice.client_id) == client_id,
        col(Invoice.period_start) == start,
        col(Invoice.period_end) == end,
    )
    return (await session.exec(statement)).first()


async def _overlapping(
    session: AsyncSession, client_id: str, start: dt.date, end: dt.date
) -> Invoice | None:
    statement = (
        select(Invoice)
        .where(
            col(Invoice.client_id) == client_id,
            col(Invoice.period_start) <= end,
            col(Invoice.period_end) >= start,
        )
        .order_by(col(Invoice.period_start))
    )
    return (await session.exec(statement)).first()


def _overlap(client_id: str, start: dt.date, end: dt.date, other: Invoice) -> ApplicationError:
    return _permanent(
        f"{client_id}'s period {start.isoformat()} to {end.isoformat()} overlaps invoice "
        f"{other.id} ({other.period_start.isoformat()} to {other.period_end.isoformat()}): "
        "a stop is billed once",
        PERIOD_OVERLAP,
        other.id,
    )


def _existing(invoice: Invoice, client_name: str) -> IssueInvoiceResult:
    return IssueInvoiceResult(
        outcome=RunOutcome.EXISTING,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        message=f"{invoice.client_id} was invoiced for {invoice.period_start.isoformat()} to "
        f"{invoice.period_end.isoformat()} already: invoice {invoice.id}",
        invoice=facts(invoice, client_name),
    )


def _invoice_row(
    client: Client, draft: InvoiceDraft, sequence: int, issued_on: dt.date, run_id: str
) -> Invoice:
    assert draft.currency is not None and draft.minor_units is not None
    assert draft.payment_terms_days is not None
    units = draft.minor_units
    minimum = sum(
        (line.amount for line in draft.lines if line.kind.value == "minimum_charge"), Decimal(0)
    )
    number = invoice_number(client.id, sequence)
    return Invoice(
        id=number,
        client_id=client.id,
        sequence=sequence,
        period_start=draft.period_start,
        period_end=draft.period_end,
        timezone=draft.timezone,
        currency=draft.currency,
        minor_units=units,
        stops_minor=to_minor(draft.subtotal - minimum, units),
        minimum_charge_minor=to_minor(minimum, units),
        subtotal_minor=to_minor(draft.subtotal, units),
        tax_minor=to_minor(draft.tax, units),
        total_minor=to_minor(draft.total, units),
        tax_lines=[
            {
                "tax_rate": format(tax.tax_rate, "f"),
                "taxable": format(tax.taxable, "f"),
                "amount": format(tax.amount, "f"),
            }
            for tax in draft.tax_lines
        ],
        stop_count=len(draft.stop_lines),
        issued_on=issued_on,
        due_on=issued_on + dt.timedelta(days=draft.payment_terms_days),
        payment_terms_days=draft.payment_terms_days,
        agreements_used=[day.isoformat() for day in draft.agreements_used],
        run_id=run_id,
        case_id=invoice_case_id(number),
        message_key=invoice_message_key(number),
    )


async def _insert_lines(session: AsyncSession, invoice: Invoice, draft: InvoiceDraft) -> None:
    units = invoice.minor_units
    lines: Sequence[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "invoice_id": invoice.id,
            "position": position,
            "kind": line.kind.value,
            "description": line.description[:300],
            "agreement_effective_from": line.agreement_effective_from,
            "zone": line.zone,
            "residential": line.residential,
            "quantity": line.quantity,
            "unit_price_minor": to_minor(line.unit_price, units),
            "amount_minor": to_minor(line.amount, units),
            "tax_rate": line.tax_rate,
        }
        for position, line in enumerate(draft.lines, start=1)
    ]
    stops = [
        {
            "id": uuid.uuid4(),
            "invoice_id": invoice.id,
            "shipment_id": stop.shipment_id,
            "attempt_number": stop.attempt_number,
            "attempted_at": stop.attempted_at,
            "local_date": stop.local_date,
            "outcome": stop.outcome,
            "zone": stop.zone,
            "residential": stop.residential,
            "agreement_effective_from": stop.agreement_effective_from,
            "base_rate_minor": to_minor(stop.base_rate, units),
            "zone_rate_minor": to_minor(stop.zone_rate, units),
            "residential_surcharge_minor": to_minor(stop.residential_surcharge, units),
            "failed_attempt_fee_minor": to_minor(stop.failed_attempt_fee, units),
            "amount_minor": to_minor(stop.amount, units),
        }
        for stop in draft.stop_lines
    ]
    conn = await session.connection()  # executemany: batched multi-row INSERTs
    await conn.execute(insert(InvoiceLine), list(lines))
    for chunk in range(0, len(stops), 1000):
        await conn.execute(insert(InvoiceStop), stops[chunk : chunk + 1000])
