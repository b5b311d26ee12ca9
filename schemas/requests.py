"""The bodies the API takes to open and act on cases: the registry (`schemas.case_types`)
publishes their JSON schemas in `GET /case-types`, and the console builds its forms from them.
They hold no caller identity (`by`): the API adds it when it turns a body into the
workflow's update input."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator

from schemas.cases import SAFE_ID, Address, Customer, check_email
from schemas.cases import Model as In
from schemas.claims import ClaimDecision, ReportedBy
from schemas.documents import ClaimType, DocumentKind
from schemas.enums import DeliveryOutcome, FailureReason, VehicleType
from schemas.invoices import DisputeOutcome
from schemas.onboarding import ReviewDecision
from schemas.types import BoundedDate, BoundedDatetime

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
    attempted_at: BoundedDatetime = Field(description="With a time zone offset.")
    note: str | None = Field(None, max_length=1000)


class DamageClaimOpen(In):
    """A damaged, lost or stolen parcel, as ops, the client or the customer report it."""

    shipment_id: str = Field(
        pattern=SAFE_ID, description="Becomes the case id `damage-claim-{shipment_id}`."
    )
    client_id: str = Field(min_length=1, max_length=64)
    claim_type: ClaimType
    reported_by: ReportedBy
    delivery_event_at: BoundedDatetime = Field(
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
    attempted_at: BoundedDatetime
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


class FailedAttemptIn(In):
    """A later failed attempt of the shipment, reported to its open case."""

    attempt_number: int = Field(ge=2, le=20, description="Higher than the case's current one.")
    reason: FailureReason
    driver_id: str = Field(min_length=1, max_length=64)
    attempted_at: BoundedDatetime = Field(description="With a time zone offset.")
    note: str | None = Field(None, max_length=1000)


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

    driver_id: str | None = Field(
        None,
        pattern=SAFE_ID,
        description="Our id for the driver (never a name or an email); generated when absent. "
        "Becomes the case id `driver-onboarding-{driver_id}`.",
    )
    name: str = Field(min_length=1, max_length=200)
    email: str
    phone: str | None = Field(None, max_length=40)
    depot_id: str = Field(min_length=1, max_length=64)
    vehicle_type: VehicleType
    planned_start_date: BoundedDate = Field(description="Today or later.")

    _email = field_validator("email")(check_email)


class ReviewIn(In):
    """Approve or reject one uploaded document."""

    decision: ReviewDecision
    reason: str | None = Field(None, max_length=1000, description="Required when rejected.")
    expires_on: BoundedDate | None = Field(
        None,
        description="Required when approving a licence, insurance or vehicle registration; at "
        "least the policy's minimum validity (30 days) ahead.",
    )


class OffboardIn(In):
    reason: str = Field(min_length=1, max_length=1000)


# --- unpaid invoices ---------------------------------------------------------------------------


_DECIMAL = re.compile(r"[+-]?\d{1,15}(\.\d{1,4})?")


def _decimal_string(value: object) -> object:
    """Money is a decimal string in JSON (`"1234.50"`), never a JSON number: a float cannot
    hold most amounts exactly, so a number is refused rather than guessed at."""
    if isinstance(value, bool | int | float):
        raise ValueError('an amount is a decimal string, e.g. "1234.50", never a JSON number')
    if isinstance(value, str) and not _DECIMAL.fullmatch(value.strip()):
        raise ValueError(f'{value!r} is not a decimal amount, e.g. "1234.50"')
    return value.strip() if isinstance(value, str) else value


Money = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{1,15}(\.\d{1,4})?$",
            "examples": ["1234.50"],
            "description": "A decimal string in the invoice's currency (never a number), with "
            "no more decimals than the currency has (none for JPY, two for GBP).",
        }
    ),
    Field(gt=0),
]
"""An amount in a body: a positive decimal string, exact in its currency (the route checks
the currency's minor units)."""


class InvoiceOpen(In):
    """An invoice to chase: issued by our invoicing or elsewhere."""

    invoice_id: str = Field(
        pattern=SAFE_ID, description="Becomes the case id `unpaid-invoice-{invoice_id}`."
    )
    client_id: str = Field(min_length=1, max_length=64)
    amount: Money
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. GBP or JPY.")
    issued_on: BoundedDate
    due_on: BoundedDate | None = Field(
        None,
        description="Defaults to issued_on plus the client's payment terms (30 days); not "
        "before issued_on.",
    )
    reference: str | None = Field(
        None, min_length=1, max_length=100, description="The client's reference, e.g. a PO."
    )


class PaymentIn(In):
    amount: Money
    paid_on: BoundedDate
    reference: str = Field(
        min_length=1, max_length=100, description="The same reference twice is recorded once."
    )


class DisputeIn(In):
    reason: str = Field(min_length=1, max_length=2000)
    disputed_amount: Money | None = Field(None, description="The part contested, if not all.")


class ResolveDisputeIn(In):
    outcome: DisputeOutcome
    adjusted_amount: (
        Annotated[
            Decimal,
            BeforeValidator(_decimal_string),
            WithJsonSchema({"type": "string", "examples": ["1000.00"]}),
            Field(ge=0),
        ]
        | None
    ) = Field(None, description="Required when adjusted: the corrected invoice total.")


class PromiseIn(In):
    promised_on: BoundedDate = Field(description="The ladder pauses until this date.")
    amount: Money


class WriteOffIn(In):
    reason: str = Field(min_length=1, max_length=1000)
