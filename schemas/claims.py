"""The damage / loss claim case: its policy, workflow input, updates and activity contracts."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from schemas.cases import CaseCarry, Customer, Model, OpenedAt
from schemas.documents import ClaimPackageInput, ClaimType, DocumentKind, DocumentRef
from schemas.enums import DescribedEnum
from schemas.policies import ClaimPolicy


class ReportedBy(DescribedEnum):
    CUSTOMER = "customer", "The customer reported it."
    CLIENT = "client", "The client shipper reported it."
    OPS = "ops", "Our own staff found it."


class ClaimDecision(DescribedEnum):
    APPROVED = "approved", "The carrier or insurer pays the claim; the case closes as paid."
    DENIED = "denied", "The claim is refused; the case closes as denied."
    MORE_INFORMATION = (
        "more_information",
        "More evidence is needed; the case goes back to gathering it.",
    )


class DamageClaimInput(Model):
    shipment_id: str
    client_id: str
    depot_id: str
    claim_type: ClaimType
    reported_by: ReportedBy
    delivery_event_at: AwareDatetime
    declared_value: Decimal | None = Field(
        None,
        gt=0,
        max_digits=12,
        decimal_places=2,
        description="None when not declared yet (a claim opened by a failed-delivery case); "
        "the proof of value establishes it.",
    )
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    description: str = Field("", max_length=5000)
    customer: Customer | None = None
    driver_id: str | None = None
    linked_case_id: str | None = Field(None, description="The failed-delivery case, if any.")
    policy: ClaimPolicy = ClaimPolicy()
    timezone: str = Field(
        "UTC", max_length=64, description="IANA zone the case's times are shown in (the depot's)."
    )
    opened_by: str = "system"
    opened_at: AwareDatetime | None = OpenedAt
    carried: DamageClaimCarry | None = Field(
        None, description="Set by the case itself when it continues as new; never by callers."
    )

    @model_validator(mode="after")
    def _currency_with_value(self) -> DamageClaimInput:
        if self.declared_value is not None and self.currency is None:
            raise ValueError("currency required when declared_value is given")
        return self


class ClaimDocument(Model):
    """A document the claim holds, as its details list it (no file name, no bytes)."""

    id: str
    kind: DocumentKind
    sha256: str


class DamageClaimDetails(Model):
    """A claim's `details`: its evidence checklist, documents and filing, and its policy."""

    shipment_id: str
    depot_id: str
    claim_type: ClaimType
    reported_by: ReportedBy
    declared_value: str | None = Field(None, description="Decimal string; None: not declared.")
    currency: str | None = None
    delivery_event_at: AwareDatetime
    late: bool = Field(description="Reported after the filing deadline.")
    round: int = Field(1, description="Gathering round: more information starts the next.")
    checklist: dict[DocumentKind, Literal["present", "missing"]] = Field(default_factory=dict)
    documents: list[ClaimDocument] = Field(default_factory=list)
    package_id: str | None = Field(None, description="The compiled claim package, once filed.")
    filed_at: AwareDatetime | None = None
    linked_case_id: str | None = Field(None, description="The failed-delivery case, if any.")
    policy: ClaimPolicy = Field(description="The policy snapshot the claim runs on.")


class AddDocumentInput(Model):
    """The `add_document` update: a stored document for one checklist item."""

    document: DocumentRef
    by: str = "ops"


class FileClaimInput(Model):
    """The `file_claim` update: ops file now; every missing item needs its reason."""

    missing_reasons: dict[DocumentKind, str] = Field(default_factory=dict)
    by: str = "ops"


class DecisionInput(Model):
    """The `record_decision` update: the carrier's or insurer's answer."""

    decision: ClaimDecision
    amount: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=2)
    reason: str | None = Field(None, max_length=2000)
    requested: list[DocumentKind] = Field(
        default_factory=list, description="more_information: the items asked for."
    )
    by: str = "ops"

    @model_validator(mode="after")
    def _fields_for_decision(self) -> DecisionInput:
        if self.decision is ClaimDecision.APPROVED and self.amount is None:
            raise ValueError("amount required when decision is approved")
        if self.decision is ClaimDecision.DENIED and not self.reason:
            raise ValueError("reason required when decision is denied")
        if self.decision is ClaimDecision.MORE_INFORMATION and not self.requested:
            raise ValueError("requested required when decision is more_information")
        return self


# --- activity contracts -------------------------------------------------------------------


class GatherEvidenceRequest(BaseModel):
    """`gather_system_evidence`: documents the system holds itself (attempt records, proof of
    delivery or the statement that there is none), stored and returned as references."""

    case_id: str
    shipment_id: str
    kinds: list[DocumentKind]


class GatheredEvidence(BaseModel):
    documents: list[DocumentRef] = Field(default_factory=list)


class CompilePackageRequest(BaseModel):
    """`compile_claim_package`: build the ZIP (cover sheet + documents), store it, return it."""

    summary: ClaimPackageInput
    documents: list[DocumentRef]


class CompiledPackage(BaseModel):
    package: DocumentRef


class DamageClaimCarry(CaseCarry):
    """A claim's state across continue-as-new (see `CaseCarry`)."""

    round: int
    anchor: AwareDatetime
    deadline: AwareDatetime
    late: bool
    checklist: list[DocumentKind]
    documents: dict[DocumentKind, list[DocumentRef]] = Field(default_factory=dict)
    file_request: FileClaimInput | None = None
    decision: DecisionInput | None = None
    package: DocumentRef | None = None
    filed_at: AwareDatetime | None = None
    package_failed: bool = False
    follow_ups_sent: int = 0
    next_follow_up_at: AwareDatetime | None = None


DamageClaimInput.model_rebuild()
