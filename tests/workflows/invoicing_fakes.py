"""In-memory stand-ins for the invoicing run's activities, under their real names, with the
real arithmetic: `issue_invoice` prices the world's stops with `schemas.pricing.price_period`
and numbers invoices per client in memory; the unpaid-invoice case the run opens runs on the
same worker against the invoice fakes."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio import activity
from temporalio.exceptions import ApplicationError

from schemas.documents import DocumentKind, DocumentRef
from schemas.invoices import DunningPolicy, UnpaidInvoiceInput
from schemas.invoicing import (
    PRICING_FAILED,
    InvoiceCaseRequest,
    InvoiceDocuments,
    InvoiceDocumentsRequest,
    InvoiceFacts,
    IssueInvoiceRequest,
    IssueInvoiceResult,
    RunOutcome,
    ScheduleSyncRequest,
    cycle_period,
    invoice_number,
)
from schemas.pricing import BillableStop, InvoiceDraft, PricingError, local_date, price_period
from schemas.rates import RateAgreement
from tests.workflows.invoice_fakes import InvoiceWorld

CLIENT = "acme"
TIMEZONE = "Europe/London"


def gbp_agreement(**terms: object) -> RateAgreement:
    values: dict[str, object] = {
        "effective_from": "2026-01-01",
        "currency": "GBP",
        "base_rate_per_stop": "3.50",
        "zone_rates": {"A": "0.00", "B": "1.25"},
        "residential_surcharge": "0.75",
        "failed_attempt_fee": "4.00",
        "minimum_charge_per_invoice": "50.00",
        "tax_rate": "0.20",
        "billing_cycle": "monthly",
    }
    values.update(terms)
    return RateAgreement.model_validate(values)


def _ref(kind: DocumentKind, content_type: str, name: str) -> DocumentRef:
    return DocumentRef(
        id=str(uuid.uuid4()),
        kind=kind,
        sha256=hashlib.sha256(name.encode()).hexdigest(),
        content_type=content_type,
        size_bytes=100,
        original_name_sanitized=name,
        stored_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    )


@dataclass
class InvoicingWorld(InvoiceWorld):
    stops: list[BillableStop] = field(default_factory=list)
    agreements: list[RateAgreement] = field(default_factory=lambda: [gbp_agreement()])
    invoices: dict[tuple[str, dt.date, dt.date], InvoiceFacts] = field(default_factory=dict)
    documents: dict[str, InvoiceDocuments] = field(default_factory=dict)
    issue_requests: list[IssueInvoiceRequest] = field(default_factory=list)
    openings: list[InvoiceCaseRequest] = field(default_factory=list)
    synced: list[str] = field(default_factory=list)
    drafts: dict[str, InvoiceDraft] = field(default_factory=dict)

    @activity.defn(name="issue_invoice")
    async def issue_invoice(self, request: IssueInvoiceRequest) -> IssueInvoiceResult:
        self.issue_requests.append(request)
        if request.period_start is not None and request.period_end is not None:
            start, end = request.period_start, request.period_end
        else:
            assert request.cycle is not None
            start, end = cycle_period(request.cycle, request.as_of, TIMEZONE)
        existing = self.invoices.get((request.client_id, start, end))
        if existing is not None:
            return IssueInvoiceResult(
                outcome=RunOutcome.EXISTING,
                period_start=start,
                period_end=end,
                message=f"invoiced already: {existing.invoice_id}",
                invoice=existing,
            )
        stops = [s for s in self.stops if start <= local_date(s.attempted_at, TIMEZONE) <= end]
        try:
            draft = price_period(
                stops=stops,
                agreements=self.agreements,
                timezone=TIMEZONE,
                period_start=start,
                period_end=end,
            )
        except PricingError as err:
            raise ApplicationError(
                f"cannot invoice {request.client_id}: {err}",
                err.problems,
                type=PRICING_FAILED,
                non_retryable=True,
            ) from None
        if draft.is_empty:
            return IssueInvoiceResult(
                outcome=RunOutcome.NO_RECORDS,
                period_start=start,
                period_end=end,
                message=f"no stops recorded for {request.client_id} between {start} and {end}",
            )
        number = invoice_number(request.client_id, len(self.invoices) + 1)
        issued_on = request.as_of.date()
        assert draft.currency and draft.minor_units is not None and draft.payment_terms_days
        facts = InvoiceFacts(
            invoice_id=number,
            client_id=request.client_id,
            client_name="Acme Retail",
            period_start=start,
            period_end=end,
            currency=draft.currency,
            minor_units=draft.minor_units,
            subtotal=draft.subtotal,
            tax=draft.tax,
            total=draft.total,
            issued_on=issued_on,
            due_on=issued_on + dt.timedelta(days=draft.payment_terms_days),
            payment_terms_days=draft.payment_terms_days,
            stop_count=len(draft.stop_lines),
            case_id=f"unpaid-invoice-{number}",
            message_key=f"unpaid-invoice-{number}/invoice",
        )
        self.invoices[(request.client_id, start, end)] = facts
        self.drafts[number] = draft
        return IssueInvoiceResult(
            outcome=RunOutcome.ISSUED,
            period_start=start,
            period_end=end,
            message=f"invoice {number} issued",
            invoice=facts,
        )

    @activity.defn(name="render_invoice_documents")
    async def render_invoice_documents(self, request: InvoiceDocumentsRequest) -> InvoiceDocuments:
        if request.invoice_id not in self.documents:
            self.documents[request.invoice_id] = InvoiceDocuments(
                pdf=_ref(DocumentKind.INVOICE, "application/pdf", f"{request.invoice_id}.pdf"),
                csv=_ref(DocumentKind.INVOICE_LINES, "text/csv", f"{request.invoice_id}.csv"),
            )
        return self.documents[request.invoice_id]

    @activity.defn(name="unpaid_invoice_opening")
    async def unpaid_invoice_opening(self, request: InvoiceCaseRequest) -> UnpaidInvoiceInput:
        self.openings.append(request)
        [facts] = [f for f in self.invoices.values() if f.invoice_id == request.invoice_id]
        return UnpaidInvoiceInput(
            invoice_id=facts.invoice_id,
            client_id=facts.client_id,
            client_name=facts.client_name,
            amount=facts.total,
            currency=facts.currency,
            minor_units=facts.minor_units,
            issued_on=facts.issued_on,
            due_on=facts.due_on,
            invoice_pdf=request.invoice_pdf,
            delivery_problem=request.delivery_problem,
            policy=DunningPolicy(),
            opened_by="invoicing:test",
        )

    @activity.defn(name="sync_invoicing_schedule")
    async def sync_invoicing_schedule(self, request: ScheduleSyncRequest) -> None:
        self.synced.append(request.client_id)

    def activities(self) -> list[Callable[..., object]]:
        return [
            *super().activities(),
            self.issue_invoice,
            self.render_invoice_documents,
            self.unpaid_invoice_opening,
            self.sync_invoicing_schedule,
        ]


def stop(shipment: str, day: dt.date, outcome: str = "delivered", **fields: object) -> BillableStop:
    values: dict[str, object] = {
        "shipment_id": shipment,
        "attempt_number": 1,
        "attempted_at": dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC),
        "outcome": outcome,
        "zone": "B" if outcome == "delivered" else None,
        "residential": True if outcome == "delivered" else None,
    }
    values.update(fields)
    return BillableStop.model_validate(values)
