"""Unpaid invoices: exact money and the dunning ladder as data.

Money is a `Decimal` with exactly the currency's minor units (none for JPY, two for GBP),
never a float; the API takes and gives decimal strings. The ladder is a policy: steps at
offsets from the due date, each with its email template and what else it does (copy the
account manager, hold new dispatches, escalate). A case opened part-way down the ladder sends
only the latest step already due, once, then follows the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.cases import CaseCarry, Model, OpenedAt
from schemas.documents import DocumentRef
from schemas.enums import DescribedEnum
from schemas.policies import event_budget
from schemas.types import SafeId


class MoneyError(ValueError):
    """An amount that is not exact in its currency (e.g. 0.5 JPY, 1.234 GBP)."""


def exact(amount: Decimal | str, minor_units: int) -> Decimal:
    """`amount` with exactly `minor_units` decimal places; MoneyError when it has more
    significant places than the currency allows (amounts are never rounded silently)."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise MoneyError(f"not a decimal amount: {amount!r}") from None
    if not value.is_finite():
        raise MoneyError(f"not a finite amount: {amount!r}")
    quantum = Decimal(1).scaleb(-minor_units)
    quantized = value.quantize(quantum, rounding=ROUND_HALF_EVEN)
    if quantized != value:
        raise MoneyError(f"{amount} has more than {minor_units} decimal places")
    return quantized


class DunningStep(Model):
    """One rung of the ladder, at `offset` from the due date (negative: before it)."""

    name: str = Field(min_length=1, max_length=64, description="Unique within the ladder.")
    offset: timedelta
    template: str = Field(description="The email to the client's billing contact.")
    copy_account_manager: bool = False
    hold_dispatches: bool = Field(False, description="Put the client's new dispatches on hold.")
    escalate: bool = Field(False, description="Flag the case and tell the account manager.")


DEFAULT_LADDER = (
    DunningStep(name="before-due", offset=timedelta(days=-3), template="dunning/before_due"),
    DunningStep(name="due", offset=timedelta(0), template="dunning/due_today"),
    DunningStep(name="overdue-7", offset=timedelta(days=7), template="dunning/overdue"),
    DunningStep(
        name="overdue-14",
        offset=timedelta(days=14),
        template="dunning/overdue",
        copy_account_manager=True,
    ),
    DunningStep(name="final-notice", offset=timedelta(days=21), template="dunning/final_notice"),
    DunningStep(
        name="dispatch-hold",
        offset=timedelta(days=30),
        template="dunning/dispatch_hold",
        hold_dispatches=True,
        escalate=True,
    ),
)


class DunningPolicy(BaseModel):
    """Defaults from DESIGN.md: net 30; reminders 3 days before the due date, on it, 7 and
    14 days after (the account manager copied), a final notice at 21 days, and at 30 days new
    dispatches held and the account manager told."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    payment_terms_days: int = Field(30, ge=0, le=365, description="Due date = issued + this.")
    steps: tuple[DunningStep, ...] = Field(DEFAULT_LADDER, min_length=1)
    send_at: time = Field(time(9, 0), description="The time of day (UTC) a step's date means.")
    grace_after_pause: timedelta = Field(
        timedelta(days=7),
        description="After a dispute or a broken promise past the due date, the next step "
        "waits at least this long.",
    )
    history_event_budget: int = event_budget()

    @model_validator(mode="after")
    def _steps_in_order(self) -> DunningPolicy:
        offsets = [step.offset for step in self.steps]
        if offsets != sorted(offsets) or len(set(offsets)) != len(offsets):
            raise ValueError("steps must be in strictly increasing order of offset")
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("step names must be unique")
        return self

    def ladder(self, due_on: dt.date) -> list[ScheduledStep]:
        """Every step with the moment it falls due."""
        anchor = datetime.combine(due_on, self.send_at, tzinfo=UTC)
        return [ScheduledStep(step, anchor + step.offset) for step in self.steps]


@dataclass(frozen=True)
class ScheduledStep:
    step: DunningStep
    at: datetime


def opening_plan(
    ladder: Sequence[ScheduledStep], now: datetime
) -> tuple[ScheduledStep | None, list[ScheduledStep], list[ScheduledStep]]:
    """For a case opened (or resumed) at `now`: the latest step already due (sent once, at
    once), the earlier ones skipped without sending, and the ones still ahead."""
    past = [scheduled for scheduled in ladder if scheduled.at <= now]
    ahead = [scheduled for scheduled in ladder if scheduled.at > now]
    return (past[-1] if past else None), past[:-1], ahead


# --- the unpaid-invoice case --------------------------------------------------------------


class Payment(Model):
    """The `record_payment` update: money received against the invoice."""

    amount: Decimal = Field(gt=0)
    paid_on: dt.date
    reference: str = Field(min_length=1, max_length=100, description="Recorded once.")
    by: str = "ops"


class DisputeOutcome(DescribedEnum):
    UPHELD = "upheld", "The invoice stands as it was."
    ADJUSTED = "adjusted", "The invoice is corrected to `adjusted_amount`."


class Dispute(Model):
    """The `open_dispute` update: the client contests the invoice; the ladder pauses."""

    reason: str = Field(min_length=1, max_length=2000)
    disputed_amount: Decimal | None = Field(None, gt=0)
    by: str = "ops"


class DisputeResolution(Model):
    """The `resolve_dispute` update: the ladder resumes from where it was."""

    outcome: DisputeOutcome
    adjusted_amount: Decimal | None = Field(
        None, ge=0, description="The corrected invoice total, for adjusted."
    )
    by: str = "ops"

    @model_validator(mode="after")
    def _amount_when_adjusted(self) -> DisputeResolution:
        if self.outcome is DisputeOutcome.ADJUSTED and self.adjusted_amount is None:
            raise ValueError("adjusted_amount required when outcome is adjusted")
        return self


class Promise(Model):
    """The `promise_to_pay` update: the ladder pauses until `promised_on`."""

    promised_on: dt.date
    amount: Decimal = Field(gt=0)
    by: str = "ops"


class WriteOff(Model):
    reason: str = Field(min_length=1, max_length=1000)
    by: str = "admin"


class HoldRelease(Model):
    """The `release_hold` update: an admin lifts the dispatch hold this case set; the ladder
    goes on chasing the balance."""

    reason: str = Field(min_length=1, max_length=500)
    by: str = "admin"


class UnpaidInvoiceInput(Model):
    invoice_id: SafeId
    client_id: str
    client_name: str | None = Field(None, description="For the people told of a hold.")
    amount: Decimal = Field(gt=0, description="The invoice total, exact in its currency.")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    minor_units: int = Field(ge=0, le=4, description="The currency's, snapshotted at open.")
    issued_on: dt.date
    due_on: dt.date
    reference: str | None = Field(None, max_length=100)
    invoice_pdf: DocumentRef | None = None
    delivery_problem: str | None = Field(
        None,
        max_length=1000,
        description="Why the invoice itself did not reach the billing contact (set by the "
        "invoicing run): the case opens escalated to the account manager.",
    )
    policy: DunningPolicy = DunningPolicy()
    timezone: str = Field(
        "UTC", max_length=64, description="IANA zone the case's times are shown in (the client's)."
    )
    opened_by: str = "system"
    opened_at: AwareDatetime | None = OpenedAt
    carried: UnpaidInvoiceCarry | None = Field(
        None, description="Set by the case itself when it continues as new; never by callers."
    )


class InvoiceDetails(Model):
    """An unpaid invoice's `details`: money as decimal strings, the ladder and the pauses."""

    invoice_id: str
    reference: str | None
    currency: str
    amount: Decimal
    balance: Decimal
    credit: Decimal = Field(Decimal(0), description="Paid beyond the balance.")
    issued_on: dt.date
    due_on: dt.date
    payments: list[Payment] = Field(default_factory=list)
    dispute: Dispute | None = None
    promise: Promise | None = None
    documents: list[DocumentRef] = Field(
        default_factory=list, description="The invoice PDF, when one was given."
    )
    dispatch_hold: bool = Field(False, description="This case holds the client's dispatches.")
    hold_depots: list[str] = Field(
        default_factory=list, description="The depots whose dispatchers were told of the hold."
    )
    steps_sent: list[str] = Field(default_factory=list)
    policy: DunningPolicy


class UnpaidInvoiceCarry(CaseCarry):
    amount: Decimal
    balance: Decimal
    credit: Decimal
    payments: list[Payment] = Field(default_factory=list)
    dispute: Dispute | None = None
    promise: Promise | None = None
    shift: timedelta = timedelta(0)
    hold: bool = False
    hold_depots: list[str] = Field(default_factory=list)
    write_off: WriteOff | None = None
    steps_sent: list[str] = Field(default_factory=list)


class DispatchHoldChange(BaseModel):
    """`set_dispatch_hold`: put the client's new dispatches on hold, or lift the hold."""

    client_id: str
    case_id: str
    hold: bool
    reason: str


class ClientDepotsRequest(BaseModel):
    """`client_depots`: the depots that handle a client's shipments."""

    client_id: str


class ClientDepots(BaseModel):
    depot_ids: list[str] = Field(default_factory=list)


UnpaidInvoiceInput.model_rebuild()
