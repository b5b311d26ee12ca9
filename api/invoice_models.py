"""What the invoicing endpoints answer: invoices (money as decimal strings in their currency),
their lines, where they stand (from the unpaid-invoice case's index row), the runs and the
client's schedule."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from schemas.enums import CaseStatus, DescribedEnum, Resolution
from schemas.invoicing import RunOutcome, from_minor
from schemas.tables import Case, Invoice, InvoiceLine, Message


class InvoiceStatus(DescribedEnum):
    """Where an invoice stands: issued until its unpaid-invoice case is open, then the case's."""

    ISSUED = "issued", "Recorded; its documents, email and case are on their way."
    OPEN = "open", "Its unpaid-invoice case is chasing the balance (or paused on a dispute)."
    PAID = "paid", "Paid in full (the case closed paid)."
    WRITTEN_OFF = "written_off", "An admin wrote the balance off."
    CANCELLED = "cancelled", "Its case was cancelled (e.g. the invoice was voided)."


def invoice_status(case: Case | None) -> InvoiceStatus:
    if case is None:
        return InvoiceStatus.ISSUED
    if case.status is CaseStatus.CANCELLED or case.resolution is Resolution.CANCELLED:
        return InvoiceStatus.CANCELLED
    if case.resolution is Resolution.PAID:
        return InvoiceStatus.PAID
    if case.resolution is Resolution.WRITTEN_OFF:
        return InvoiceStatus.WRITTEN_OFF
    return InvoiceStatus.OPEN


def money(minor: int, invoice: Invoice) -> str:
    return format(from_minor(minor, invoice.minor_units), "f")


class InvoiceSummary(BaseModel):
    invoice_id: str = Field(description="The number, e.g. INV-DEMO-SHOP-000042.")
    client_id: str
    period_start: dt.date
    period_end: dt.date
    currency: str
    total: str
    issued_on: dt.date
    due_on: dt.date
    status: InvoiceStatus
    case_id: str
    case_status: CaseStatus | None = Field(description="Null until the case is in the index.")
    balance: str | None = Field(description="What the case says is still due.")


class InvoiceLineOut(BaseModel):
    position: int
    kind: str
    description: str
    agreement_effective_from: dt.date
    zone: str | None
    residential: bool | None
    quantity: int
    unit_price: str
    amount: str
    tax_rate: str


class InvoiceDocumentOut(BaseModel):
    id: str
    sha256: str
    content_type: str
    size_bytes: int
    download_url: str


class InvoiceEmailOut(BaseModel):
    message_key: str
    status: str | None = Field(description="The outbox row's status; null: not sent yet.")
    recipient_email: str | None
    sent_at: dt.datetime | None


class InvoiceDetail(InvoiceSummary):
    timezone: str
    stops_total: str = Field(description="The stop lines, before any minimum-charge uplift.")
    minimum_charge: str = Field(description="The uplift to the minimum charge (0: none).")
    subtotal: str
    tax: str
    tax_lines: list[dict[str, str]]
    payment_terms_days: int
    stop_count: int
    lines: list[InvoiceLineOut]
    pdf: InvoiceDocumentOut | None
    csv: InvoiceDocumentOut | None
    email: InvoiceEmailOut
    run_id: str
    case_resolution: Resolution | None


def summary(invoice: Invoice, case: Case | None) -> InvoiceSummary:
    return InvoiceSummary(**_summary_fields(invoice, case))


def _summary_fields(invoice: Invoice, case: Case | None) -> dict[str, Any]:
    balance = case.details.get("balance") if case is not None else None
    return {
        "invoice_id": invoice.id,
        "client_id": invoice.client_id,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "currency": invoice.currency,
        "total": money(invoice.total_minor, invoice),
        "issued_on": invoice.issued_on,
        "due_on": invoice.due_on,
        "status": invoice_status(case),
        "case_id": invoice.case_id,
        "case_status": case.status if case is not None else None,
        "balance": str(balance) if balance is not None else None,
    }


def detail(
    invoice: Invoice, case: Case | None, lines: list[InvoiceLine], message: Message | None
) -> InvoiceDetail:
    def document(kind: str, doc_id: str | None, sha: str | None, size: int | None, ctype: str):
        if not (doc_id and sha and size):
            return None
        return InvoiceDocumentOut(
            id=doc_id,
            sha256=sha,
            content_type=ctype,
            size_bytes=size,
            download_url=f"/invoices/{invoice.id}/{kind}",
        )

    return InvoiceDetail(
        **_summary_fields(invoice, case),
        timezone=invoice.timezone,
        stops_total=money(invoice.stops_minor, invoice),
        minimum_charge=money(invoice.minimum_charge_minor, invoice),
        subtotal=money(invoice.subtotal_minor, invoice),
        tax=money(invoice.tax_minor, invoice),
        tax_lines=invoice.tax_lines,
        payment_terms_days=invoice.payment_terms_days,
        stop_count=invoice.stop_count,
        lines=[
            InvoiceLineOut(
                position=line.position,
                kind=line.kind,
                description=line.description,
                agreement_effective_from=line.agreement_effective_from,
                zone=line.zone,
                residential=line.residential,
                quantity=line.quantity,
                unit_price=money(line.unit_price_minor, invoice),
                amount=money(line.amount_minor, invoice),
                tax_rate=format(line.tax_rate, "f"),
            )
            for line in lines
        ],
        pdf=document(
            "pdf",
            invoice.pdf_document_id,
            invoice.pdf_sha256,
            invoice.pdf_size_bytes,
            "application/pdf",
        ),
        csv=document(
            "csv", invoice.csv_document_id, invoice.csv_sha256, invoice.csv_size_bytes, "text/csv"
        ),
        email=InvoiceEmailOut(
            message_key=invoice.message_key,
            status=message.status.value if message is not None else None,
            recipient_email=message.recipient_email if message is not None else None,
            sent_at=message.sent_at if message is not None else None,
        ),
        run_id=invoice.run_id,
        case_resolution=case.resolution if case is not None else None,
    )


class RunFailure(BaseModel):
    type: str | None
    message: str
    problems: list[str] = Field(default_factory=list)


class RunOut(BaseModel):
    """An invoicing run: its answer once it has one."""

    run_id: str = Field(description="The run's workflow id (its page in the Temporal UI).")
    status: str = Field(description="running, completed, failed, terminated, ...")
    outcome: RunOutcome | None = None
    message: str | None = None
    client_id: str
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    invoice: InvoiceDetail | None = None
    emailed: bool | None = None
    email_problem: str | None = None
    failure: RunFailure | None = None
    trace_url: str


class ScheduleRunOut(BaseModel):
    run_id: str
    scheduled_at: dt.datetime
    started_at: dt.datetime
    status: str | None


class InvoicingScheduleOut(BaseModel):
    """The client's invoicing schedule as Temporal holds it."""

    schedule_id: str
    client_id: str
    cycle: str | None
    timezone: str | None
    paused: bool
    note: str | None
    next_runs: list[dt.datetime]
    recent_runs: list[ScheduleRunOut]
    catchup_window_seconds: float | None
    overlap: str
