"""Drivers: the onboarding case (documents collected, reviewed, the driver activated) and the
compliance watch that follows an active driver's expiring documents for as long as they drive.

The driver id is the business key (`driver-onboarding-{driver_id}`,
`driver-compliance-{driver_id}`): never a name or an email.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from datetime import timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.cases import CaseCarry, Model, OpenedAt
from schemas.documents import EXPIRING_KINDS, DocumentKind, DocumentRef
from schemas.enums import DescribedEnum, DriverStatus, VehicleType
from schemas.policies import event_budget
from schemas.types import SafeId

# --- policies ---------------------------------------------------------------------------------


class ChecklistChange(Model):
    """Items a depot or a vehicle type adds to, or drops from, the onboarding checklist."""

    add: tuple[DocumentKind, ...] = ()
    drop: tuple[DocumentKind, ...] = ()


class CompliancePolicy(BaseModel):
    """Defaults from DESIGN.md: renewals asked for 30 days ahead, reminded weekly, the
    coordinator told 7 days before; an expiry date must leave 30 days of validity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_validity: timedelta = Field(
        timedelta(days=30), description="An approved document must be valid at least this long."
    )
    renewal_notice_before: timedelta = Field(
        timedelta(days=30), description="Ask the driver for a replacement this long before."
    )
    renewal_reminder_every: timedelta = Field(
        timedelta(days=7), description="Remind the driver this often until one is approved."
    )
    coordinator_warning_before: timedelta = Field(
        timedelta(days=7), description="Tell the onboarding coordinator this long before."
    )
    review_reminder_after: timedelta = Field(
        timedelta(hours=24), description="Remind the coordinator of a document in review."
    )
    history_event_budget: int = event_budget(2_000)


class OnboardingPolicy(BaseModel):
    """Defaults from DESIGN.md: reminders every 48 h, escalation after 7 days, abandoned after
    30 days; the checklist of six documents, less the vehicle registration for bikes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checklist: tuple[DocumentKind, ...] = Field(
        (
            DocumentKind.DRIVING_LICENCE,
            DocumentKind.PROOF_OF_INSURANCE,
            DocumentKind.VEHICLE_REGISTRATION,
            DocumentKind.BACKGROUND_CHECK_CONSENT,
            DocumentKind.CONTRACTOR_AGREEMENT,
            DocumentKind.TAX_FORM,
        ),
        description="What every new driver hands in.",
    )
    depot_changes: ChecklistChange = Field(
        default_factory=ChecklistChange,
        description="The depot's own additions and removals (set in the depot's overrides).",
    )
    vehicle_changes: dict[VehicleType, ChecklistChange] = Field(
        default_factory=lambda: {
            VehicleType.CARGO_BIKE: ChecklistChange(drop=(DocumentKind.VEHICLE_REGISTRATION,)),
            VehicleType.BIKE: ChecklistChange(drop=(DocumentKind.VEHICLE_REGISTRATION,)),
        },
        description="Per vehicle type, e.g. no vehicle registration for a cargo bike.",
    )
    reminder_every: timedelta = Field(
        timedelta(hours=48), description="Remind the driver of what is still requested."
    )
    escalate_after: timedelta = Field(
        timedelta(days=7), description="Tell the onboarding coordinator after this long."
    )
    abandon_after: timedelta = Field(
        timedelta(days=30), description="Close the case as abandoned after this long."
    )
    compliance: CompliancePolicy = Field(
        default_factory=CompliancePolicy,
        description="Review reminders and minimum validity here; the expiry watch after.",
    )
    history_event_budget: int = event_budget()

    @model_validator(mode="after")
    def _ladder_in_order(self) -> OnboardingPolicy:
        if not (timedelta(0) < self.reminder_every <= self.escalate_after < self.abandon_after):
            raise ValueError("need 0 < reminder_every <= escalate_after < abandon_after")
        return self

    def checklist_for(self, vehicle_type: VehicleType) -> list[DocumentKind]:
        """The items this driver must hand in, in order."""
        changes = [self.depot_changes, self.vehicle_changes.get(vehicle_type, ChecklistChange())]
        dropped = {kind for change in changes for kind in change.drop}
        items = [kind for kind in self.checklist if kind not in dropped]
        for change in changes:
            items += [kind for kind in change.add if kind not in items and kind not in dropped]
        return items


def onboarding_reminders(
    policy: OnboardingPolicy, started_at: dt.datetime
) -> list[tuple[str, dt.datetime]]:
    """The driver's reminders, every `reminder_every` from the start until abandonment."""
    every, ends = policy.reminder_every, started_at + policy.abandon_after
    times, n = [], 1
    while started_at + n * every < ends:
        times.append((f"remind the driver ({n})", started_at + n * every))
        n += 1
    return times


# --- the onboarding case -----------------------------------------------------------------------


class ItemStatus(DescribedEnum):
    REQUESTED = "requested", "Asked for; nothing usable received yet."
    IN_REVIEW = "in_review", "Received; waiting for ops to approve or reject it."
    APPROVED = "approved", "Approved (with its expiry date, for documents that expire)."
    REJECTED = "rejected", "Refused (a document's record only: its item is requested again)."
    SUPERSEDED = "superseded", "Replaced by an approved renewal (a document's record only)."


class ChecklistItem(Model):
    """One required document and where it stands."""

    kind: DocumentKind
    status: ItemStatus = ItemStatus.REQUESTED
    document: DocumentRef | None = Field(None, description="The latest upload for this item.")
    received_at: AwareDatetime | None = None
    expires_on: dt.date | None = None
    rejected_reason: str | None = Field(None, description="Why the last upload was rejected.")

    @property
    def expires(self) -> bool:
        return self.kind in EXPIRING_KINDS


class DriverProfile(Model):
    """Who the driver is, as onboarding needs it (personal data: it stays in the workflow
    input, never in ids or search attributes)."""

    name: str = Field(min_length=1, max_length=200)
    email: str
    phone: str | None = Field(None, max_length=40)


class DriverOnboardingInput(Model):
    driver_id: SafeId
    depot_id: str
    depot_name: str | None = Field(None, description="How the driver's emails name the depot.")
    driver: DriverProfile
    vehicle_type: VehicleType
    planned_start_date: dt.date
    checklist: list[DocumentKind] = Field(
        description="Resolved at open from the policy, the depot and the vehicle type."
    )
    policy: OnboardingPolicy = OnboardingPolicy()
    timezone: str = Field(
        "UTC", max_length=64, description="IANA zone the case's times are shown in (the depot's)."
    )
    opened_by: str = "system"
    opened_at: AwareDatetime | None = OpenedAt
    carried: DriverOnboardingCarry | None = Field(
        None, description="Set by the case itself when it continues as new; never by callers."
    )


class ReviewDecision(DescribedEnum):
    APPROVED = "approved", "The document is accepted."
    REJECTED = "rejected", "The document is refused; the driver is asked for it again."


class ReviewDocumentInput(Model):
    """The `review_document` update: ops approve or reject one uploaded document."""

    document_id: str
    decision: ReviewDecision
    reason: str | None = Field(None, max_length=1000, description="Required when rejected.")
    expires_on: dt.date | None = Field(
        None, description="Required when approving a document that expires."
    )
    by: str = "ops"

    @model_validator(mode="after")
    def _reason_when_rejected(self) -> ReviewDocumentInput:
        if self.decision is ReviewDecision.REJECTED and not (self.reason or "").strip():
            raise ValueError("reason required when decision is rejected")
        return self


class OnboardingDetails(Model):
    """A driver-onboarding case's `details`: the checklist and the policy it runs on."""

    driver_id: str
    depot_id: str
    vehicle_type: VehicleType
    planned_start_date: dt.date
    checklist: list[ChecklistItem]
    documents: list[OnboardingDocument] = Field(
        default_factory=list,
        description="Every document received, rejected ones included (downloadable).",
    )
    compliance_case_id: str | None = Field(None, description="The watch opened at activation.")
    policy: OnboardingPolicy


class OnboardingDocument(Model):
    id: str
    kind: DocumentKind
    sha256: str


class DriverOnboardingCarry(CaseCarry):
    checklist: list[ChecklistItem]
    received: list[DocumentRef] = Field(default_factory=list)
    started_at: AwareDatetime
    compliance_case_id: str | None = None


# --- the compliance watch ----------------------------------------------------------------------


class WatchedDocument(Model):
    """An approved document that expires, as the watch follows it."""

    kind: DocumentKind
    document_id: str
    expires_on: dt.date
    sha256: str | None = Field(None, description="The stored document's checksum.")


class DriverComplianceInput(Model):
    driver_id: SafeId
    depot_id: str
    driver: DriverProfile
    documents: list[WatchedDocument]
    policy: CompliancePolicy = CompliancePolicy()
    timezone: str = Field(
        "UTC", max_length=64, description="IANA zone the case's times are shown in (the depot's)."
    )
    opened_by: str = "system"
    carried: DriverComplianceCarry | None = Field(
        None, description="Set by the case itself when it continues as new; never by callers."
    )


class ComplianceDetails(Model):
    """A compliance watch's `details`: each watched document, what is being renewed."""

    driver_id: str
    depot_id: str
    documents: list[WatchedDocument]
    renewals: list[ChecklistItem] = Field(
        default_factory=list, description="Replacements asked for, and where they stand."
    )
    suspended_for: list[DocumentKind] = Field(
        default_factory=list, description="Expired documents that keep the driver off routes."
    )
    policy: CompliancePolicy


class OffboardInput(Model):
    """The `offboard` update: the driver leaves; the watch ends."""

    reason: str = Field(min_length=1, max_length=1000)
    by: str = "ops"


class DriverComplianceCarry(CaseCarry):
    watched: list[WatchedDocument]
    renewals: list[ChecklistItem] = Field(default_factory=list)
    suspended_for: list[DocumentKind] = Field(default_factory=list)
    offboard_request: OffboardInput | None = None


# --- activity contracts ---------------------------------------------------------------------


class DriverStatusChange(BaseModel):
    """`set_driver_status`: the driver record's status, as the case decides it."""

    driver_id: str
    status: DriverStatus
    case_id: str
    reason: str = ""


class DriverDocumentRecord(BaseModel):
    """`record_driver_document`: a driver's document and where it stands (for
    `GET /drivers/{id}` and `expiring_before`), keyed by (driver_id, document_id)."""

    driver_id: str
    case_id: str
    document_id: str
    kind: DocumentKind
    status: ItemStatus
    expires_on: dt.date | None = None
    at: AwareDatetime


class BriefingPackRequest(BaseModel):
    """`build_briefing_pack`: the depot's route briefing (address, hours, first-day
    instructions) as PDFs, stored; returned as references to attach to the welcome email."""

    case_id: str
    depot_id: str
    driver_id: str
    planned_start_date: dt.date
    vehicle_type: VehicleType


class BriefingPack(BaseModel):
    documents: list[DocumentRef]


def expiring(items: Sequence[ChecklistItem]) -> list[WatchedDocument]:
    """The approved items that expire, as the compliance watch follows them."""
    return [
        WatchedDocument(
            kind=item.kind,
            document_id=item.document.id,
            expires_on=item.expires_on,
            sha256=item.document.sha256,
        )
        for item in items
        if item.status is ItemStatus.APPROVED
        and item.expires
        and item.document is not None
        and item.expires_on is not None
    ]


DriverOnboardingInput.model_rebuild()
DriverComplianceInput.model_rebuild()
OnboardingDetails.model_rebuild()
