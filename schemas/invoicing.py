"""The invoicing run: its input and result, the activities' shapes, the failure types both
the workflow and the API know by name, and the billing period a schedule's run covers.

A run invoices one client for one period: it prices the period (`schemas.pricing`), records
the invoice under the client's next number, renders its PDF and CSV, emails both to the
client's billing contact and opens the unpaid-invoice case. Started by ops
(`POST /invoicing-runs`, an explicit period) or by the client's Temporal Schedule (a billing
cycle: the period is the cycle before the schedule's nominal time, in the client's time zone).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from schemas.documents import DocumentRef
from schemas.enums import BillingCycle, DescribedEnum

RUN_WORKFLOW = "InvoicingRunWorkflow"
"""The run's workflow type (the API and the schedules start it by name)."""

RUN_ID_PREFIX = "invoicing-run-"
SCHEDULE_ID_PREFIX = "invoicing-"

NUMBER_DIGITS = 6
MAX_NUMBER_LENGTH = 64
"""An invoice number is the unpaid-invoice case's business key (`schemas.types.SafeId`, at
most 64)."""

# --- failure types (non-retryable ApplicationErrors of the run and its activities) ---------

PRICING_FAILED = "InvoicePricingFailed"
"""The period's records and agreements cannot make an invoice (`details[0]`: the problems)."""
PERIOD_OVERLAP = "InvoicePeriodOverlap"
"""The period overlaps another invoice of the client (`details[0]`: its number)."""
NUMBER_UNAVAILABLE = "InvoiceNumberUnavailable"
"""The client's id cannot make an invoice number (too long, or another client's ids clash)."""
UNKNOWN_CLIENT = "UnknownClient"
NOT_SCHEDULED = "InvoicingRunNotScheduled"
"""A run without a period was not started by a schedule: it has no nominal time."""
CASE_REFUSED = "InvoiceCaseRefused"
"""The unpaid-invoice case cannot be opened (e.g. the client's dunning override is invalid)."""
UNKNOWN_INVOICE = "UnknownInvoice"

RUN_FAILURES = (
    PRICING_FAILED,
    PERIOD_OVERLAP,
    NUMBER_UNAVAILABLE,
    UNKNOWN_CLIENT,
    NOT_SCHEDULED,
    CASE_REFUSED,
    UNKNOWN_INVOICE,
)


def run_workflow_id(client_id: str, period_start: dt.date, period_end: dt.date) -> str:
    """A run ops start: the business key is the client and the period."""
    return f"{RUN_ID_PREFIX}{client_id}-{period_start.isoformat()}-{period_end.isoformat()}"


def scheduled_run_id(client_id: str) -> str:
    """The id a schedule's runs start with (Temporal appends the nominal time)."""
    return f"{RUN_ID_PREFIX}{client_id}"


def schedule_id(client_id: str) -> str:
    return f"{SCHEDULE_ID_PREFIX}{client_id}"


def invoice_number(client_id: str, sequence: int) -> str:
    """`INV-DEMO-SHOP-000042`: the client's id upper-cased and its gapless sequence."""
    return f"INV-{client_id.upper()}-{sequence:0{NUMBER_DIGITS}d}"


def number_problem(client_id: str) -> str | None:
    """Why this client's invoices cannot be numbered (None: they can)."""
    longest = invoice_number(client_id, 10**NUMBER_DIGITS - 1)
    if len(longest) > MAX_NUMBER_LENGTH or not re.fullmatch(r"[A-Za-z0-9._-]+", longest):
        return (
            f"client id '{client_id}' is too long for an invoice number (at most "
            f"{MAX_NUMBER_LENGTH - NUMBER_DIGITS - 5} characters)"
        )
    return None


# --- the billing period of a scheduled run ------------------------------------------------


def cycle_period(
    cycle: BillingCycle, nominal: dt.datetime, timezone: str
) -> tuple[dt.date, dt.date]:
    """The whole cycle before the one that contains `nominal` (the schedule's nominal time),
    in the client's time zone: weekly, the Monday-to-Sunday week before; monthly, the
    calendar month before. Derived from the nominal time, never from the clock: a run that
    starts late (caught up after an outage, backfilled) bills the same period."""
    if nominal.tzinfo is None:
        raise ValueError("the nominal time must be timezone-aware")
    day = nominal.astimezone(ZoneInfo(timezone)).date()
    if cycle is BillingCycle.WEEKLY:
        monday = day - dt.timedelta(days=day.weekday())
        return monday - dt.timedelta(days=7), monday - dt.timedelta(days=1)
    last = day.replace(day=1) - dt.timedelta(days=1)
    return last.replace(day=1), last


# --- the run --------------------------------------------------------------------------------


class RunOutcome(DescribedEnum):
    ISSUED = "issued", "A new invoice was issued for the period."
    EXISTING = "existing", "The period was invoiced already; that invoice is the answer."
    NO_RECORDS = "no_records", "No stops were recorded in the period: no invoice."
    ALREADY_INVOICED = (
        "already_invoiced",
        "A scheduled run found the client invoiced through the end of its period already.",
    )


class InvoicingRunInput(BaseModel):
    """Ops give a period; a schedule gives its cycle (the period follows from its nominal
    time and, after the client's first invoice, starts the day after the last one)."""

    client_id: str = Field(min_length=1, max_length=64)
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    cycle: BillingCycle | None = Field(None, description="Scheduled runs only.")
    requested_by: str = "schedule"

    @model_validator(mode="after")
    def _period_or_cycle(self) -> InvoicingRunInput:
        given = (self.period_start is None, self.period_end is None)
        if given == (True, True) and self.cycle is None:
            raise ValueError("a run needs a period (period_start, period_end) or a cycle")
        if given not in ((True, True), (False, False)):
            raise ValueError("period_start and period_end go together")
        return self

    @property
    def scheduled(self) -> bool:
        return self.period_start is None


class IssueInvoiceRequest(BaseModel):
    """`issue_invoice`: price the period and record the invoice (or find the one there is).

    `as_of` is the run's moment (the schedule's nominal time, or when ops started it): the
    invoice is dated on its day in the client's time zone."""

    client_id: str
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    cycle: BillingCycle | None = None
    as_of: AwareDatetime
    continue_from_last: bool = Field(
        False,
        description="Start the day after the client's last invoice (scheduled runs): a cycle "
        "change, a paused schedule or an outage neither bills a stop twice nor leaves one out.",
    )
    run_id: str = Field(description="The workflow id of the run, kept on the invoice.")


class InvoiceFacts(BaseModel):
    """What the run needs of an invoice (the lines stay in the database)."""

    invoice_id: str
    client_id: str
    client_name: str
    period_start: dt.date
    period_end: dt.date
    currency: str
    minor_units: int
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    issued_on: dt.date
    due_on: dt.date
    payment_terms_days: int
    stop_count: int
    case_id: str
    message_key: str
    pdf: DocumentRef | None = None
    csv: DocumentRef | None = None


class IssueInvoiceResult(BaseModel):
    outcome: RunOutcome
    period_start: dt.date
    period_end: dt.date
    message: str
    invoice: InvoiceFacts | None = None


class InvoiceDocumentsRequest(BaseModel):
    """`render_invoice_documents`: the PDF and the CSV, rendered and stored once."""

    invoice_id: str


class InvoiceDocuments(BaseModel):
    pdf: DocumentRef
    csv: DocumentRef


class InvoiceCaseRequest(BaseModel):
    """`unpaid_invoice_opening`: the unpaid-invoice case's input for an invoice, with the
    client's dunning policy as it is now."""

    invoice_id: str
    invoice_pdf: DocumentRef
    delivery_problem: str | None = None


class ScheduleSyncRequest(BaseModel):
    """`sync_invoicing_schedule`: bring the client's schedule in step with its agreement."""

    client_id: str


class InvoicingRunResult(BaseModel):
    """The run's answer: what was invoiced (or why nothing was), where it went."""

    client_id: str
    outcome: RunOutcome
    period_start: dt.date
    period_end: dt.date
    message: str
    invoice_id: str | None = None
    total: Decimal | None = None
    currency: str | None = None
    case_id: str | None = None
    emailed: bool = False
    email_problem: str | None = Field(
        None, description="Why the invoice email did not go out (the case is escalated)."
    )


# --- money in minor units (how the invoice tables store it) -------------------------------


def to_minor(amount: Decimal, minor_units: int) -> int:
    """An exact amount as an integer count of minor units (4.50 GBP -> 450); ValueError for
    an amount finer than the currency's minor unit (never rounded here)."""
    scaled = amount.scaleb(minor_units)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} is not exact to {minor_units} decimal places")
    return int(scaled)


def from_minor(minor: int, minor_units: int) -> Decimal:
    """450 minor units of GBP -> Decimal("4.50"); of JPY (0) 450 -> Decimal("450")."""
    return Decimal(minor).scaleb(-minor_units)
