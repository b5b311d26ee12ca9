"""Claim evidence: document kinds, the checklist per claim type, stored-document references and
the input of the claim package.

Documents live in a document store outside the workflow; the workflow holds only a
`DocumentRef` (id, checksum, real content type), never the bytes nor the client's file name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas.cases import Model, TimelineEvent
from schemas.enums import DescribedEnum


class ClaimType(DescribedEnum):
    DAMAGED = "damaged", "The parcel was delivered, or found, damaged."
    LOST = "lost", "The parcel went missing in our network before delivery."
    THEFT = "theft", "The parcel was stolen; a police report backs the claim."
    NON_DELIVERY = (
        "non_delivery",
        "The parcel is recorded as delivered but the customer says it never arrived.",
    )


class DocumentKind(DescribedEnum):
    ATTEMPT_RECORD = (
        "attempt_record",
        "The delivery attempts as the routing system recorded them (time, driver, outcome).",
    )
    PROOF_OF_DELIVERY = (
        "proof_of_delivery",
        "Signature, photo or GPS record of the hand-over, or the system's statement that none "
        "exists.",
    )
    DAMAGE_PHOTOS = "damage_photos", "The driver's photos of the damaged parcel and contents."
    CUSTOMER_ATTESTATION = (
        "customer_attestation",
        "The customer's signed statement of what was received, or not.",
    )
    PROOF_OF_VALUE = "proof_of_value", "Invoice or receipt showing what the contents were worth."
    POLICE_REPORT = "police_report", "The police report or its reference number, for thefts."
    INSURANCE_PAPERS = "insurance_papers", "The shipper's insurance certificate or policy."
    OTHER = "other", "Any other supporting document ops attach to the claim."
    # A driver's documents (driver onboarding and the compliance watch).
    DRIVING_LICENCE = "driving_licence", "The driver's driving licence (both sides)."
    PROOF_OF_INSURANCE = "proof_of_insurance", "Insurance covering the driver and vehicle."
    VEHICLE_REGISTRATION = "vehicle_registration", "The vehicle's registration document."
    BACKGROUND_CHECK_CONSENT = (
        "background_check_consent",
        "The driver's signed consent to a background check.",
    )
    CONTRACTOR_AGREEMENT = "contractor_agreement", "The signed contractor agreement."
    TAX_FORM = "tax_form", "The driver's completed tax form."
    RIGHT_TO_WORK = "right_to_work", "Proof of the right to work (a depot may ask for it)."
    BRIEFING_PACK = "briefing_pack", "The route briefing documents casedesk sends a new driver."
    # An unpaid invoice's own document.
    INVOICE = "invoice", "The invoice as issued to the client (PDF), attached to every reminder."
    INVOICE_LINES = (
        "invoice_lines",
        "Every stop an invoice bills, one row each with its price components (CSV).",
    )
    # A client report's own documents.
    REPORT_CHART = "report_chart", "A chart of a client's weekly report (PNG)."
    REPORT_PDF = "report_pdf", "The PDF copy of a client's weekly report: figures and charts."
    REPORT_ROWS = (
        "report_rows",
        "Every stop and case behind a client report's figures, one row each (CSV).",
    )


CLAIM_DOCUMENT_KINDS: tuple[DocumentKind, ...] = (
    DocumentKind.ATTEMPT_RECORD,
    DocumentKind.PROOF_OF_DELIVERY,
    DocumentKind.DAMAGE_PHOTOS,
    DocumentKind.CUSTOMER_ATTESTATION,
    DocumentKind.PROOF_OF_VALUE,
    DocumentKind.POLICE_REPORT,
    DocumentKind.INSURANCE_PAPERS,
    DocumentKind.OTHER,
)
DRIVER_DOCUMENT_KINDS: tuple[DocumentKind, ...] = (
    DocumentKind.DRIVING_LICENCE,
    DocumentKind.PROOF_OF_INSURANCE,
    DocumentKind.VEHICLE_REGISTRATION,
    DocumentKind.BACKGROUND_CHECK_CONSENT,
    DocumentKind.CONTRACTOR_AGREEMENT,
    DocumentKind.TAX_FORM,
    DocumentKind.RIGHT_TO_WORK,
)
EXPIRING_KINDS: frozenset[DocumentKind] = frozenset(
    {
        DocumentKind.DRIVING_LICENCE,
        DocumentKind.PROOF_OF_INSURANCE,
        DocumentKind.VEHICLE_REGISTRATION,
    }
)
"""Approving one of these needs its expiry date; the compliance watch follows them."""


CLAIM_CHECKLISTS: dict[str, tuple[DocumentKind, ...]] = {
    ClaimType.DAMAGED: (
        DocumentKind.ATTEMPT_RECORD,
        DocumentKind.PROOF_OF_DELIVERY,
        DocumentKind.DAMAGE_PHOTOS,
        DocumentKind.CUSTOMER_ATTESTATION,
        DocumentKind.PROOF_OF_VALUE,
    ),
    # For lost parcels and non-delivery, "proof of delivery" is the record that there is
    # none (or the disputed one): the carrier needs it either way.
    ClaimType.LOST: (
        DocumentKind.ATTEMPT_RECORD,
        DocumentKind.PROOF_OF_DELIVERY,
        DocumentKind.CUSTOMER_ATTESTATION,
        DocumentKind.PROOF_OF_VALUE,
    ),
    ClaimType.THEFT: (
        DocumentKind.ATTEMPT_RECORD,
        DocumentKind.PROOF_OF_DELIVERY,
        DocumentKind.CUSTOMER_ATTESTATION,
        DocumentKind.PROOF_OF_VALUE,
        DocumentKind.POLICE_REPORT,
    ),
    ClaimType.NON_DELIVERY: (
        DocumentKind.ATTEMPT_RECORD,
        DocumentKind.PROOF_OF_DELIVERY,
        DocumentKind.CUSTOMER_ATTESTATION,
        DocumentKind.PROOF_OF_VALUE,
    ),
}
"""The evidence each claim type needs, in the order the cover sheet lists it."""

EvidenceSource = Literal["system", "driver", "customer", "ops"]

EVIDENCE_SOURCES: dict[DocumentKind, EvidenceSource] = {
    DocumentKind.ATTEMPT_RECORD: "system",
    DocumentKind.PROOF_OF_DELIVERY: "system",
    DocumentKind.DAMAGE_PHOTOS: "driver",
    DocumentKind.CUSTOMER_ATTESTATION: "customer",
    DocumentKind.PROOF_OF_VALUE: "customer",
    DocumentKind.POLICE_REPORT: "customer",
    DocumentKind.INSURANCE_PAPERS: "ops",
    DocumentKind.OTHER: "ops",
}
"""Who owes each item: gathered by an activity, or requested from the driver or customer
(ops may upload any of them)."""


class DocumentRef(Model):
    """A stored document as the workflow knows it. `content_type` is what the bytes are
    (detected), not what the uploader said; the stored file is named by `id` only."""

    id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    kind: DocumentKind
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: str
    size_bytes: int = Field(ge=1)
    original_name_sanitized: str | None = Field(None, max_length=100)
    stored_at: AwareDatetime


class ClaimPackageInput(Model):
    """What the cover sheet states about the claim. `missing_reasons` holds ops' explanation
    for each checklist item filed without a document."""

    case_id: str
    shipment_id: str
    client_id: str
    claim_type: ClaimType
    description: str = Field("", max_length=5000)
    declared_value: Decimal | None = Field(
        None, ge=0, max_digits=14, decimal_places=2, description="None: not declared yet."
    )
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    delivery_event_at: AwareDatetime
    filing_deadline_at: AwareDatetime
    late: bool = False
    reported_by: str | None = None
    reported_at: AwareDatetime | None = None
    compiled_at: AwareDatetime = Field(
        description="When the package was compiled (the workflow's clock, so it is replayable)."
    )
    timeline: list[TimelineEvent] = Field(default_factory=list)
    missing_reasons: dict[DocumentKind, str] = Field(default_factory=dict)
