"""What the case endpoints take and return."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field

from api.models import SAFE_ID, In
from schemas.cases import Address, Customer
from schemas.claims import ClaimDecision, ReportedBy
from schemas.documents import ClaimType, DocumentKind
from schemas.enums import (
    CaseStatus,
    CaseType,
    DeliveryOutcome,
    FailureReason,
    MessageStatus,
    Resolution,
)

# --- opening a case -----------------------------------------------------------------------


class FailedDeliveryOpen(In):
    """A failed delivery attempt, as the routing system or ops report it."""

    shipment_id: str = Field(
        pattern=SAFE_ID, description="Becomes the case id `failed-delivery-{shipment_id}`."
    )
    client_id: str = Field(min_length=1, max_length=64)
    customer: Customer
    address: Address
    attempt_number: int = Field(1, ge=1, le=20)
    reason: FailureReason
    driver_id: str = Field(min_length=1, max_length=64)
    attempted_at: AwareDatetime = Field(description="With a time zone offset.")
    note: str | None = Field(None, max_length=1000)


class DamageClaimOpen(In):
    """A damaged, lost or stolen parcel, as ops, the client or the customer report it."""

    shipment_id: str = Field(
        pattern=SAFE_ID, description="Becomes the case id `damage-claim-{shipment_id}`."
    )
    client_id: str = Field(min_length=1, max_length=64)
    claim_type: ClaimType
    reported_by: ReportedBy
    delivery_event_at: AwareDatetime = Field(
        description="The delivery event the claim is about (with a time zone offset); the "
        "filing deadline runs from it."
    )
    declared_value: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. GBP.")
    description: str = Field(min_length=1, max_length=5000)
    customer: Customer | None = Field(
        None, description="Defaults to the customer on the shipment's record, if there is one."
    )
    driver_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The driver asked for damage photos; the case's depot is theirs.",
    )


# --- actions ------------------------------------------------------------------------------


class FileClaimIn(In):
    missing_reasons: dict[DocumentKind, Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=dict,
        description="Why each checklist item still missing is missing (every one needs a "
        "reason), e.g. {'damage_photos': 'driver off sick'}.",
    )


class DecisionIn(In):
    decision: ClaimDecision
    amount: Decimal | None = Field(
        None, gt=0, max_digits=12, decimal_places=2, description="Required when approved."
    )
    reason: str | None = Field(None, max_length=2000, description="Required when denied.")
    requested: list[DocumentKind] = Field(
        default_factory=list, description="Required for more_information: the items asked for."
    )


class DeliveryOutcomeIn(In):
    outcome: DeliveryOutcome
    attempted_at: AwareDatetime
    attempt_number: int | None = Field(
        None,
        ge=1,
        le=20,
        description="The delivery attempt this outcome is for (the case's "
        "`details.attempt_number`). The routing system should always send it: an outcome for "
        "any other attempt (e.g. a retried webhook after the next attempt began) is then "
        "refused with 409 instead of being applied twice.",
    )
    driver_id: str | None = Field(None, max_length=64)
    reason: FailureReason | None = Field(None, description="Required when the outcome is failed.")
    note: str | None = Field(None, max_length=1000)


class NoteIn(In):
    text: str = Field(min_length=1, max_length=5000)


class AssignIn(In):
    assignee: str | None = Field(None, max_length=200, description="null unassigns.")


class ReasonIn(In):
    reason: str = Field(min_length=1, max_length=1000)


# --- views --------------------------------------------------------------------------------


class CaseSummary(BaseModel):
    case_id: str
    type: CaseType
    status: CaseStatus
    resolution: Resolution | None
    business_key: str
    client_id: str
    subject: str
    opened_at: datetime
    closed_at: datetime | None
    deadline_at: datetime | None
    overdue: bool = Field(description="The deadline has passed and the case is still open.")
    escalated: bool
    escalation_reason: str | None = None
    assignee: str | None
    next_step: str | None
    next_step_at: datetime | None
    trace_url: str = Field(description="The case's page in the Temporal Web UI.")


class TimelineItem(BaseModel):
    seq: int
    at: datetime
    kind: str
    summary: str
    actor: str
    data: dict[str, Any] = Field(default_factory=dict)


class CaseMessage(BaseModel):
    id: uuid.UUID
    key: str
    template: str
    recipient_role: str
    recipient_email: str
    subject: str
    status: MessageStatus
    created_at: datetime
    sent_at: datetime | None


class CaseDetail(CaseSummary):
    details: dict[str, Any] = Field(default_factory=dict)
    allowed_actions: list[str] = Field(
        default_factory=list, description="Actions (`/cases/{id}/<action>`) allowed now."
    )
    timeline: list[TimelineItem] = Field(default_factory=list)
    messages: list[CaseMessage] = Field(default_factory=list)
    documents: list[dict[str, Any]] = Field(default_factory=list)
    live: bool = Field(
        description="True when read from the running case; false when from the index "
        "because no worker answered (allowed_actions is then empty)."
    )
