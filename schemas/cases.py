"""What crosses the workflow boundary: workflow inputs, update/query payloads and the case
state the workflow publishes. Each takes one model and returns one; new fields get defaults.

No ORM rows here: workflows pass IDs and plain values.
"""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas import examples
from schemas.enums import (
    CaseStatus,
    CaseType,
    DeliveryOutcome,
    FailureReason,
    RedeliveryOption,
    Resolution,
    TimeWindow,
)
from schemas.examples import example
from schemas.policies import ClaimPolicy, FailedDeliveryPolicy
from schemas.types import BoundedDate, Email, LongText, SafeId, SafeText

Text = Field(min_length=1, max_length=200)
OpenedAt = Field(
    None,
    description="When casedesk took the opening in (the API sets it): the case's clock (its "
    "deadline, its first step) starts there. None: from its first workflow task (cases opened "
    "by other cases, and those opened before the field existed).",
)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- the people and places a case is about ------------------------------------------------


class Address(Model):
    line1: SafeText = Text
    line2: SafeText | None = Field(None, max_length=200)
    city: SafeText = Text
    postal_code: SafeText = Field(min_length=1, max_length=20)
    country: str = Field("US", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")

    def one_line(self) -> str:
        parts = [self.line1, self.line2, f"{self.postal_code} {self.city}", self.country]
        return ", ".join(p for p in parts if p)


class Customer(Model):
    name: SafeText = Text
    email: Email
    phone: SafeText | None = Field(None, max_length=40)


# --- failed delivery ----------------------------------------------------------------------


class FailedAttempt(Model):
    """One failed delivery attempt, as the routing system or a driver reports it."""

    attempt_number: int = Field(ge=1, le=20)
    reason: FailureReason
    driver_id: str = Field(min_length=1, max_length=64)
    attempted_at: AwareDatetime
    note: str | None = Field(None, max_length=1000)


class DispatchHoldNotice(Model):
    """The client's dispatch hold as a case saw it when it opened: set by an unpaid-invoice
    case at the end of its dunning ladder (`case_id`), until that invoice is paid or an admin
    releases it."""

    reason: str
    case_id: str
    since: datetime | None = None


class FailedDeliveryInput(Model):
    shipment_id: str
    client_id: str
    depot_id: str
    customer: Customer
    address: Address
    attempt: FailedAttempt
    client_dispatch_hold: DispatchHoldNotice | None = Field(
        None, description="The client's dispatch hold when the case opened, if it had one."
    )
    policy: FailedDeliveryPolicy = FailedDeliveryPolicy()
    claim_policy: ClaimPolicy = Field(
        default_factory=ClaimPolicy,
        description="The client's claim policy, for the claim a damaged parcel opens.",
    )
    timezone: str = Field(
        "UTC", max_length=64, description="IANA zone the case's times are shown in (the depot's)."
    )
    opened_by: str = "system"
    opened_at: AwareDatetime | None = OpenedAt
    carried: FailedDeliveryCarry | None = Field(
        None, description="Set by the case itself when it continues as new; never by callers."
    )


class RedeliveryRequest(Model):
    """How the customer (or ops on their behalf) wants the parcel: the fields the option needs."""

    model_config = ConfigDict(json_schema_extra=example(examples.redelivery))

    option: RedeliveryOption
    date: BoundedDate | None = Field(None, description="Required for redelivery_window.")
    window: TimeWindow | None = Field(None, description="Required for redelivery_window.")
    pickup_point_id: SafeId | None = Field(None, description="Required for pickup_point.")
    neighbour_name: SafeText | None = Field(
        None, max_length=200, description="Required for neighbour."
    )
    neighbour_address: SafeText | None = Field(
        None, max_length=200, description="Required for neighbour."
    )
    address: Address | None = Field(None, description="Required for address_correction.")
    instructions: LongText | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _fields_for_option(self) -> RedeliveryRequest:
        required = {
            RedeliveryOption.REDELIVERY_WINDOW: ("date", "window"),
            RedeliveryOption.PICKUP_POINT: ("pickup_point_id",),
            RedeliveryOption.NEIGHBOUR: ("neighbour_name", "neighbour_address"),
            RedeliveryOption.ADDRESS_CORRECTION: ("address",),
        }[self.option]
        missing = [name for name in required if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"{', '.join(missing)} required when option is {self.option.value}")
        return self


class RedeliveryChoice(RedeliveryRequest):
    """The `choose_redelivery` update: a request bound to the attempt it answers."""

    model_config = ConfigDict(json_schema_extra=None)  # the request's example lacks the rest

    attempt_number: int = Field(ge=1)
    by: str = "customer"


class DeliveryOutcomeReport(Model):
    """The `record_delivery_outcome` update: what happened on the booked redelivery."""

    outcome: DeliveryOutcome
    attempted_at: AwareDatetime
    attempt_number: int | None = Field(
        None,
        ge=1,
        description="The attempt this outcome is for; when given, an outcome for any other "
        "attempt (e.g. a retried webhook) is refused with 409 instead of being applied twice.",
    )
    driver_id: str | None = Field(None, max_length=64)
    reason: FailureReason | None = Field(None, description="Required when the outcome is failed.")
    note: str | None = Field(None, max_length=1000)
    by: str = "routing"

    @model_validator(mode="after")
    def _reason_when_failed(self) -> DeliveryOutcomeReport:
        if self.outcome is DeliveryOutcome.FAILED and self.reason is None:
            raise ValueError("reason required when outcome is failed")
        return self


class FailedAttemptReport(Model):
    """The `report_failed_attempt` update: a later failed attempt of the same shipment."""

    attempt: FailedAttempt
    by: str = "routing"


class RedeliveryBooked(Model):
    """What `schedule_redelivery` booked: the shipment's new plan."""

    summary: str
    delivery_date: dt.date
    expected_by: datetime
    route_day_starts_at: datetime | None = Field(
        None,
        description="00:00 of the delivery date in the depot's zone (the change cut-off "
        "counts back from it); absent on bookings made before changes were possible.",
    )


class FailedDeliveryDetails(Model):
    """A failed-delivery case's `details`: where the shipment stands, and its policy."""

    shipment_id: str
    depot_id: str
    attempt_number: int = Field(description="The current attempt.")
    max_attempts: int
    last_reason: FailureReason
    damage_reported: bool = False
    fees_cents: int = Field(0, description="Failed-attempt fees so far, in minor units.")
    currency: str
    redelivery: str | None = Field(None, description="The booked redelivery, in words.")
    redelivery_option: RedeliveryOption | None = None
    changeable_until: datetime | None = Field(
        None,
        description="Until when the booked redelivery can still be changed (the policy's "
        "`change_cutoff` before its route day); null when nothing is booked.",
    )
    claim_case_id: str | None = Field(None, description="The damage claim this case opened.")
    client_dispatch_hold: DispatchHoldNotice | None = Field(
        None,
        description="The client's new dispatches were on hold (an unpaid invoice) when the "
        "case opened; `GET /clients/{id}` says whether it still is.",
    )
    policy: FailedDeliveryPolicy = Field(description="The policy snapshot the case runs on.")


# --- common case actions ------------------------------------------------------------------


class NoteInput(Model):
    text: str = Field(min_length=1, max_length=5000)
    by: str = "ops"


class AssignInput(Model):
    assignee: str | None = Field(None, max_length=200, description="None unassigns.")
    by: str = "ops"


class EscalateInput(Model):
    reason: str = Field(min_length=1, max_length=1000)
    by: str = "ops"


class CancelInput(Model):
    reason: str = Field(min_length=1, max_length=1000)
    by: str = "ops"


# --- what the workflow publishes ----------------------------------------------------------


class TimelineEvent(BaseModel):
    """One audit entry; `seq` is unique within the case so a retried write never duplicates."""

    seq: int
    at: datetime
    kind: str
    summary: str
    actor: str = "system"
    data: dict[str, Any] = Field(default_factory=dict)


class CaseSnapshot(BaseModel):
    """The projection of a case: what the SQL case index holds (no personal data beyond
    the subject line, which ops see anyway)."""

    case_id: str
    case_type: CaseType
    status: CaseStatus
    resolution: Resolution | None = None
    business_key: str
    client_id: str | None = Field(None, description="The client the case is for, if any.")
    depot_id: str | None = Field(None, description="The depot the case belongs to, if any.")
    subject: str
    opened_at: datetime
    closed_at: datetime | None = None
    deadline_at: datetime | None = None
    escalated: bool = False
    escalation_reason: str | None = None
    assignee: str | None = None
    next_step: str | None = None
    next_step_at: datetime | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    version: int = 0


class CaseState(CaseSnapshot):
    """The `state` query: the snapshot plus the live timeline and what may be done now."""

    allowed_actions: list[str] = Field(default_factory=list)
    timeline: list[TimelineEvent] = Field(default_factory=list)


class CaseRecord(BaseModel):
    """Input of the `record_case` activity: upsert the projection, append new events.

    The projection is applied only if its version is newer than the stored one, so retries
    and out-of-order deliveries never move a case backwards."""

    snapshot: CaseSnapshot
    events: list[TimelineEvent] = Field(default_factory=list)


# --- continue-as-new --------------------------------------------------------------------------


class CaseCarry(BaseModel):
    """What a case carries into its next run when it continues as new: its published state,
    the timeline numbering (the events themselves are in the SQL projection), which ladder
    steps already fired, a pending cancellation, and where its run was waiting (`stage`)."""

    snapshot: CaseSnapshot
    next_seq: int
    timeline: list[TimelineEvent] = Field(
        default_factory=list, description="Events not yet written to the projection."
    )
    fired: list[str] = Field(default_factory=list)
    cancel_request: CancelInput | None = None
    stage: str
    runs: int = Field(1, description="How many runs the case has had before this one.")


class FailedDeliveryCarry(CaseCarry):
    attempt: FailedAttempt
    attempt_by: str
    attempt_taken_at: datetime
    asked_at: datetime | None = None
    fees_cents: int
    damage_reported: bool
    choice: RedeliveryChoice | None = None
    booking: RedeliveryBooked | None = None
    change: RedeliveryChoice | None = None
    changes: int = 0
    next_attempt: FailedAttempt | None = None
    next_attempt_by: str
    next_attempt_taken_at: datetime
    delivered: DeliveryOutcomeReport | None = None
    claim_case_id: str | None = None


FailedDeliveryInput.model_rebuild()
