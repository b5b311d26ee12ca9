"""The bodies the API takes to open and act on cases: the registry (`schemas.case_types`)
publishes their JSON schemas in `GET /case-types`, and the console builds its forms from them.
They hold no caller identity (`by`): the API adds it when it turns a body into the
workflow's update input."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema

from core.uploads import DEFAULT_MAX_UPLOAD_BYTES
from schemas import examples
from schemas.cases import Address, Customer
from schemas.cases import Model as In
from schemas.claims import ClaimDecision, ReportedBy
from schemas.documents import ClaimType, DocumentKind
from schemas.enums import DeliveryOutcome, FailureReason, VehicleType
from schemas.examples import example
from schemas.invoices import DisputeOutcome
from schemas.onboarding import ReviewDecision
from schemas.types import (
    BoundedDate,
    BoundedDatetime,
    Count,
    Email,
    LongText,
    Money,
    SafeId,
    SafeText,
    decimal_string,
)

# --- opening a case -----------------------------------------------------------------------


class FailedDeliveryOpen(In):
    """A failed delivery attempt, as the routing system or ops report it."""

    model_config = ConfigDict(json_schema_extra=example(examples.failed_delivery_open))

    shipment_id: SafeId = Field(description="Becomes the case id `failed-delivery-{shipment_id}`.")
    client_id: SafeId
    customer: Customer
    address: Address
    attempt_number: Count = Field(1, ge=1, le=20)
    reason: FailureReason
    driver_id: SafeId
    attempted_at: BoundedDatetime = Field(
        description="With a time zone offset; not in the future, nor older than the client's "
        "policy allows (`attempt_max_age`, 30 days)."
    )
    note: LongText | None = Field(None, max_length=1000)


class DamageClaimOpen(In):
    """A damaged, lost or stolen parcel, as ops, the client or the customer report it."""

    model_config = ConfigDict(json_schema_extra=example(examples.damage_claim_open))

    shipment_id: SafeId = Field(description="Becomes the case id `damage-claim-{shipment_id}`.")
    client_id: SafeId
    claim_type: ClaimType
    reported_by: ReportedBy
    delivery_event_at: BoundedDatetime = Field(
        description="The delivery event the claim is about (with a time zone offset); the "
        "filing deadline runs from it. Not in the future, nor older than the client's claim "
        "policy allows (`event_max_age`, 365 days)."
    )
    declared_value: Money = Field(max_digits=12, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. GBP.")
    description: LongText = Field(min_length=1, max_length=5000)
    customer: Customer | None = Field(
        None, description="Defaults to the customer on the shipment's record, if there is one."
    )
    driver_id: SafeId | None = Field(
        None, description="The driver asked for damage photos; the case's depot is theirs."
    )


# --- actions ------------------------------------------------------------------------------


class FileClaimIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.file_claim))

    missing_reasons: dict[DocumentKind, Annotated[LongText, Field(max_length=1000)]] = Field(
        default_factory=dict,
        description="Why each checklist item still missing is missing (every one needs a "
        "reason), e.g. {'damage_photos': 'driver off sick'}.",
    )


class DecisionIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.decision))

    decision: ClaimDecision
    amount: Money | None = Field(
        None, max_digits=12, decimal_places=2, description="Required when approved."
    )
    reason: LongText | None = Field(None, max_length=2000, description="Required when denied.")
    requested: list[DocumentKind] = Field(
        default_factory=list, description="Required for more_information: the items asked for."
    )


class DeliveryOutcomeIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.delivery_outcome))

    outcome: DeliveryOutcome
    attempted_at: BoundedDatetime
    attempt_number: Count | None = Field(
        None,
        ge=1,
        le=20,
        description="The delivery attempt this outcome is for (the case's "
        "`details.attempt_number`). The routing system should always send it: an outcome for "
        "any other attempt (e.g. a retried webhook after the next attempt began) is then "
        "refused with 409 instead of being applied twice.",
    )
    driver_id: SafeId | None = None
    reason: FailureReason | None = Field(None, description="Required when the outcome is failed.")
    note: LongText | None = Field(None, max_length=1000)


class NoteIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.note))

    text: LongText = Field(min_length=1, max_length=5000)


class AssignIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.assign))

    assignee: SafeText | None = Field(None, max_length=200, description="null unassigns.")


class ReasonIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.reason))

    reason: LongText = Field(min_length=1, max_length=1000)


class FailedAttemptIn(In):
    """A later failed attempt of the shipment, reported to its open case."""

    model_config = ConfigDict(json_schema_extra=example(examples.failed_attempt))

    attempt_number: Count = Field(ge=2, le=20, description="Higher than the case's current one.")
    reason: FailureReason
    driver_id: SafeId
    attempted_at: BoundedDatetime = Field(
        description="With a time zone offset; not in the future, nor older than the case's "
        "policy allows (`attempt_max_age`)."
    )
    note: LongText | None = Field(None, max_length=1000)


class DocumentUpload(In):
    """`multipart/form-data`: the checklist item and the file. Checked by its bytes; the file
    name is kept only as a sanitized label."""

    kind: DocumentKind = Field(description="The checklist item this document is.")
    file: bytes = Field(
        json_schema_extra={"format": "binary"},
        description="A PDF or an image (PNG, JPEG, WEBP, HEIC); an attestation may be plain text.",
    )


# --- drivers -----------------------------------------------------------------------------------


class DriverOnboardingOpen(In):
    """A new driver to onboard at a depot."""

    model_config = ConfigDict(json_schema_extra=example(examples.driver_onboarding_open))

    driver_id: SafeId | None = Field(
        None,
        description="Our id for the driver (never a name or an email); generated when absent. "
        "Becomes the case id `driver-onboarding-{driver_id}`.",
    )
    name: SafeText = Field(min_length=1, max_length=200)
    email: Email
    phone: SafeText | None = Field(None, max_length=40)
    depot_id: SafeId
    vehicle_type: VehicleType
    planned_start_date: BoundedDate = Field(description="Today or later.")


class ReviewIn(In):
    """Approve or reject one uploaded document."""

    model_config = ConfigDict(json_schema_extra=example(examples.review))

    decision: ReviewDecision
    reason: LongText | None = Field(None, max_length=1000, description="Required when rejected.")
    expires_on: BoundedDate | None = Field(
        None,
        description="Required when approving a licence, insurance or vehicle registration; at "
        "least the policy's minimum validity (30 days) ahead.",
    )


class OffboardIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.offboard))

    reason: LongText = Field(min_length=1, max_length=1000)


# --- unpaid invoices ---------------------------------------------------------------------------


INVOICE_PDF_MAX_BASE64 = 4 * ((DEFAULT_MAX_UPLOAD_BYTES + 2) // 3)
"""The base64 length of the largest PDF the document store takes by default."""


class InvoiceOpen(In):
    """An invoice to chase: issued by our invoicing or elsewhere."""

    model_config = ConfigDict(json_schema_extra=example(examples.invoice_open))

    invoice_id: SafeId = Field(description="Becomes the case id `unpaid-invoice-{invoice_id}`.")
    client_id: SafeId
    amount: Money
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. GBP or JPY.")
    issued_on: BoundedDate
    due_on: BoundedDate | None = Field(
        None,
        description="Defaults to issued_on plus the client's payment terms (30 days); not "
        "before issued_on.",
    )
    reference: SafeText | None = Field(
        None, min_length=1, max_length=100, description="The client's reference, e.g. a PO."
    )
    invoice_pdf: str | None = Field(
        None,
        max_length=INVOICE_PDF_MAX_BASE64,
        json_schema_extra={"contentEncoding": "base64", "contentMediaType": "application/pdf"},
        description="The invoice itself, a PDF in base64 (at most the upload limit, 20 MiB by "
        "default): kept on the case and attached to every reminder.",
    )


class ReleaseHoldIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.release_hold))

    reason: SafeText = Field(
        min_length=1, max_length=500, description="Why, for the timeline and the people told."
    )


class PaymentIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.payment))

    amount: Money
    paid_on: BoundedDate
    reference: SafeText = Field(
        min_length=1, max_length=100, description="The same reference twice is recorded once."
    )


class DisputeIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.dispute))

    reason: LongText = Field(min_length=1, max_length=2000)
    disputed_amount: Money | None = Field(None, description="The part contested, if not all.")


class ResolveDisputeIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.resolve_dispute))

    outcome: DisputeOutcome
    adjusted_amount: (
        Annotated[
            Decimal,
            BeforeValidator(decimal_string),
            WithJsonSchema({"type": "string", "examples": ["1000.00"]}),
            Field(ge=0),
        ]
        | None
    ) = Field(None, description="Required when adjusted: the corrected invoice total.")


class PromiseIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.promise))

    promised_on: BoundedDate = Field(description="The ladder pauses until this date.")
    amount: Money


class WriteOffIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.write_off))

    reason: LongText = Field(min_length=1, max_length=1000)
