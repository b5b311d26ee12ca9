"""The case-type registry: every case type declared once, read by every layer.

A `CaseTypeSpec` says what a case type is made of: its workflow, the body that opens it, its
policy with defaults, the statuses and resolutions it uses (each described for this type), the
actions ops can take on it (body, minimum role, the workflow update they call), the document
kinds and signed-link purposes it uses, its email templates and its API router.

Who reads it: `worker.py` registers each type's workflow, `api/main.py` mounts each router,
`GET /case-types` publishes it, the action routes refuse an action a type does not have (409),
policy resolution validates client overrides per type, and the console builds its forms from
it. Workflows and routers are named by import path, so this module (in `schemas/`, imported by
the API and by workflow code alike) imports neither `workflows/` nor `api/`.

Adding a case type: see the README, "Adding a case type".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from schemas import contracts
from schemas.cases import FailedDeliveryDetails, FailedDeliveryInput, RedeliveryRequest
from schemas.claims import DamageClaimDetails, DamageClaimInput
from schemas.contracts import UpdateContract
from schemas.documents import CLAIM_DOCUMENT_KINDS, DRIVER_DOCUMENT_KINDS, DocumentKind
from schemas.enums import CaseStatus, CaseType, Resolution, Role
from schemas.invoices import DunningPolicy, InvoiceDetails, UnpaidInvoiceInput
from schemas.onboarding import (
    ComplianceDetails,
    CompliancePolicy,
    DriverComplianceInput,
    DriverOnboardingInput,
    OnboardingDetails,
    OnboardingPolicy,
)
from schemas.openings import (
    FirstView,
    damage_claim_first_view,
    driver_onboarding_first_view,
    failed_delivery_first_view,
    unpaid_invoice_first_view,
)
from schemas.policies import ClaimPolicy, FailedDeliveryPolicy
from schemas.requests import (
    AssignIn,
    DamageClaimOpen,
    DecisionIn,
    DeliveryOutcomeIn,
    DisputeIn,
    DocumentUpload,
    DriverOnboardingOpen,
    FailedAttemptIn,
    FailedDeliveryOpen,
    FileClaimIn,
    InvoiceOpen,
    NoteIn,
    PaymentIn,
    PromiseIn,
    ReasonIn,
    ResolveDisputeIn,
    ReviewIn,
    WriteOffIn,
)
from schemas.stuck import DEFAULT_STUCK_POLICY, StuckPolicy

JSON = "application/json"
MULTIPART = "multipart/form-data"


@dataclass(frozen=True)
class ActionSpec:
    """`POST /cases/{case_id}/{name}`: what it takes, who may, and the update it calls."""

    name: str
    title: str
    description: str
    body: type[BaseModel]
    update: UpdateContract[Any]
    role: Role = Role.OPS
    media_type: str = JSON
    done: str = "Done."
    """What the console says once the action went through."""
    route: str | None = None
    """The path under `/cases/{case_id}/` when it is not the action's name."""

    @property
    def path(self) -> str:
        return self.route or self.name


@dataclass(frozen=True)
class CaseTypeSpec:
    case_type: CaseType
    title: str
    path: str
    """`POST /cases/{path}` opens a case of this type."""
    workflow: str
    """`module:Class` of the workflow; the class name is the Temporal workflow type."""
    router: str
    """The module whose `router` the API mounts for this type's own endpoints."""
    open_body: type[BaseModel]
    workflow_input: type[BaseModel]
    policy: type[BaseModel]
    details: type[BaseModel]
    statuses: Mapping[CaseStatus, str]
    resolutions: Mapping[Resolution, str]
    actions: tuple[ActionSpec, ...]
    document_kinds: tuple[DocumentKind, ...] = ()
    link_purposes: tuple[str, ...] = ()
    templates: tuple[str, ...] = field(default=())
    """Email templates (`templates/email/<name>.{subject.txt,txt,html}`) the workflow sends."""
    stuck: StuckPolicy = DEFAULT_STUCK_POLICY
    """When a case of this type is listed on the stuck-case radar (`GET /cases/stuck`)."""
    first_view: Callable[[Any, datetime], FirstView] | None = None
    """What an opening of this type determines (`schemas.openings`): the API's 201. None for
    a type only other cases open."""

    @property
    def workflow_type(self) -> str:
        return self.workflow.rpartition(":")[2]

    @property
    def action_names(self) -> list[str]:
        return [action.name for action in self.actions]

    def action(self, name: str) -> ActionSpec | None:
        return next((action for action in self.actions if action.name == name), None)

    def describe_status(self, status: CaseStatus) -> str:
        return self.statuses.get(status, status.description)

    def describe_resolution(self, resolution: Resolution) -> str:
        return self.resolutions.get(resolution, resolution.description)


def _common_actions(*, cancel_title: str, cancel_description: str) -> tuple[ActionSpec, ...]:
    """The actions every case type has."""
    return (
        ActionSpec(
            "notes",
            "Add a note",
            "Adds a note to the timeline (open cases).",
            NoteIn,
            contracts.ADD_NOTE,
            done="Note added.",
        ),
        ActionSpec(
            "assign",
            "Assign",
            "Assigns the case to a person (null unassigns).",
            AssignIn,
            contracts.ASSIGN,
            done="Assignee saved.",
        ),
        ActionSpec(
            "escalate",
            "Escalate",
            "Flags the case escalated and tells the person this case type escalates to; the "
            "email is sent after the answer.",
            ReasonIn,
            contracts.ESCALATE,
            done="Case escalated.",
        ),
        ActionSpec(
            "cancel",
            cancel_title,
            cancel_description,
            ReasonIn,
            contracts.CANCEL,
            done="Cancellation requested.",
        ),
    )


FAILED_DELIVERY = CaseTypeSpec(
    case_type=CaseType.FAILED_DELIVERY,
    title="Failed delivery",
    path="failed-deliveries",
    workflow="workflows.failed_delivery:FailedDeliveryWorkflow",
    first_view=failed_delivery_first_view,
    router="api.routes.failed_deliveries",
    open_body=FailedDeliveryOpen,
    workflow_input=FailedDeliveryInput,
    policy=FailedDeliveryPolicy,
    details=FailedDeliveryDetails,
    statuses={
        CaseStatus.OPEN: "The failed attempt is being recorded.",
        CaseStatus.WAITING_ON_CUSTOMER: "Waiting for the customer to choose how to receive "
        "the parcel (signed link), with a reminder and a dispatcher escalation on the way.",
        CaseStatus.REDELIVERY_SCHEDULED: "A redelivery is booked; waiting for its outcome.",
        CaseStatus.RETURNING_TO_SENDER: "The parcel is being sent back to the client shipper.",
        CaseStatus.CLOSED: "Finished; the resolution says how.",
        CaseStatus.CANCELLED: "Cancelled by ops before it finished.",
    },
    resolutions={
        Resolution.DELIVERED: "The parcel was delivered.",
        Resolution.RETURNED_TO_SENDER: "Refused, unanswered or out of attempts: the parcel "
        "went back to the client shipper.",
        Resolution.CANCELLED: "Ops cancelled the case.",
    },
    actions=(
        ActionSpec(
            "redelivery",
            "Book a redelivery",
            "Books a redelivery on the customer's behalf (while waiting on the customer).",
            RedeliveryRequest,
            contracts.CHOOSE_REDELIVERY,
            done="Redelivery booked.",
        ),
        ActionSpec(
            "delivery-outcome",
            "Report the delivery outcome",
            "How the booked redelivery went: delivered closes the case, failed starts the "
            "next attempt.",
            DeliveryOutcomeIn,
            contracts.RECORD_DELIVERY_OUTCOME,
            done="Delivery outcome recorded.",
        ),
        ActionSpec(
            "failed-attempt",
            "Report a later failed attempt",
            "A further failed attempt of the same shipment; the case starts over for it.",
            FailedAttemptIn,
            contracts.REPORT_FAILED_ATTEMPT,
            done="Failed attempt recorded.",
        ),
        *_common_actions(
            cancel_title="Cancel the case",
            cancel_description="Stops the case; it closes as cancelled.",
        ),
    ),
    link_purposes=(contracts.RESCHEDULE_LINK,),
    templates=(
        "failed_delivery/customer_notice",
        "failed_delivery/customer_reminder",
        "failed_delivery/dispatcher_escalation",
        "failed_delivery/redelivery_confirmation",
        "failed_delivery/client_redelivery_notice",
        "failed_delivery/return_to_sender_customer",
        "failed_delivery/return_to_sender_client",
        "case/escalation",
    ),
    stuck=StuckPolicy(
        waiting_windows={
            # The policy's default dispatcher escalation: past it, a person should step in.
            CaseStatus.WAITING_ON_CUSTOMER: timedelta(hours=48),
            # The furthest bookable redelivery (7 days) and the outcome's grace (24 h).
            CaseStatus.REDELIVERY_SCHEDULED: timedelta(days=8),
            CaseStatus.RETURNING_TO_SENDER: timedelta(days=3),
        }
    ),
)

DAMAGE_CLAIM = CaseTypeSpec(
    case_type=CaseType.DAMAGE_CLAIM,
    title="Damage or loss claim",
    path="damage-claims",
    workflow="workflows.damage_claim:DamageClaimWorkflow",
    first_view=damage_claim_first_view,
    router="api.routes.damage_claims",
    open_body=DamageClaimOpen,
    workflow_input=DamageClaimInput,
    policy=ClaimPolicy,
    details=DamageClaimDetails,
    statuses={
        CaseStatus.OPEN: "The claim is being opened.",
        CaseStatus.GATHERING_EVIDENCE: "Collecting the evidence before the filing deadline.",
        CaseStatus.AWAITING_DECISION: "Filed with the carrier or insurer; waiting for their "
        "decision, with weekly follow-ups.",
        CaseStatus.CLOSED: "Finished; the resolution says how.",
    },
    resolutions={
        Resolution.PAID: "The claim was approved and paid.",
        Resolution.DENIED: "The claim was denied.",
        Resolution.WITHDRAWN: "The claim was withdrawn before a decision.",
    },
    actions=(
        ActionSpec(
            "documents",
            "Add evidence",
            "Adds a document to a checklist item (multipart: kind, file), while gathering.",
            DocumentUpload,
            contracts.ADD_DOCUMENT,
            media_type=MULTIPART,
            done="Document added.",
        ),
        ActionSpec(
            "file",
            "File the claim now",
            "Files the claim with what it has; every missing item needs its reason.",
            FileClaimIn,
            contracts.FILE_CLAIM,
            done="Filing requested: the package is compiled and sent.",
        ),
        ActionSpec(
            "decision",
            "Record the decision",
            "approved (amount) closes as paid, denied (reason) as denied, more_information "
            "(requested) gathers those items again.",
            DecisionIn,
            contracts.RECORD_DECISION,
            done="Decision recorded.",
        ),
        *_common_actions(
            cancel_title="Withdraw the claim",
            cancel_description="Withdraws the claim; it closes as withdrawn.",
        ),
    ),
    document_kinds=CLAIM_DOCUMENT_KINDS,
    link_purposes=(contracts.CLAIM_UPLOAD_LINK,),
    templates=(
        "claims/evidence_request_driver",
        "claims/evidence_request_customer",
        "claims/evidence_reminder",
        "claims/claims_desk_escalation",
        "claims/claim_filed",
        "claims/decision_follow_up",
        "case/escalation",
    ),
    stuck=StuckPolicy(
        waiting_windows={
            CaseStatus.GATHERING_EVIDENCE: timedelta(hours=72),  # the filing window
            CaseStatus.AWAITING_DECISION: timedelta(days=30),
        }
    ),
)


def _document_actions(*, upload: str) -> tuple[ActionSpec, ...]:
    """A driver's documents: upload one for a checklist item, review what was uploaded."""
    return (
        ActionSpec(
            "documents",
            "Upload a document",
            upload,
            DocumentUpload,
            contracts.ADD_DOCUMENT,
            media_type=MULTIPART,
            done="Document received; it waits for review.",
        ),
        ActionSpec(
            "review",
            "Review a document",
            "Approve (with the expiry date for a licence, insurance or registration) or reject "
            "(with the reason: the driver is asked again) one document in review.",
            ReviewIn,
            contracts.REVIEW_DOCUMENT,
            route="documents/{document_id}/review",
            done="Review recorded.",
        ),
    )


DRIVER_ONBOARDING = CaseTypeSpec(
    case_type=CaseType.DRIVER_ONBOARDING,
    title="Driver onboarding",
    path="driver-onboardings",
    workflow="workflows.driver_onboarding:DriverOnboardingWorkflow",
    first_view=driver_onboarding_first_view,
    router="api.routes.drivers_onboarding",
    open_body=DriverOnboardingOpen,
    workflow_input=DriverOnboardingInput,
    policy=OnboardingPolicy,
    details=OnboardingDetails,
    statuses={
        CaseStatus.OPEN: "The welcome and the briefing pack are being sent.",
        CaseStatus.COLLECTING_DOCUMENTS: "Waiting for the driver's documents and their "
        "review, with reminders every 48 h and the coordinator told after 7 days.",
        CaseStatus.CLOSED: "Finished; the resolution says how.",
    },
    resolutions={
        Resolution.ACTIVATED: "Every document was approved; the driver is active and watched.",
        Resolution.ABANDONED: "Not completed within 30 days; the driver's link stopped working.",
        Resolution.WITHDRAWN: "Ops withdrew the onboarding.",
    },
    actions=(
        *_document_actions(upload="Uploads a document for the driver (multipart: kind, file)."),
        *_common_actions(
            cancel_title="Withdraw the onboarding",
            cancel_description="Stops onboarding; the driver record becomes withdrawn.",
        ),
    ),
    document_kinds=DRIVER_DOCUMENT_KINDS,
    link_purposes=(contracts.DRIVER_UPLOAD_LINK,),
    templates=(
        "onboarding/welcome",
        "onboarding/reminder",
        "onboarding/document_rejected",
        "onboarding/coordinator_escalation",
        "onboarding/review_reminder",
        "onboarding/abandoned",
        "onboarding/first_day",
        "onboarding/dispatcher_ready",
        "case/escalation",
    ),
    stuck=StuckPolicy(
        # The coordinator's escalation: a week without every document approved.
        waiting_windows={CaseStatus.COLLECTING_DOCUMENTS: timedelta(days=7)}
    ),
)

DRIVER_COMPLIANCE = CaseTypeSpec(
    case_type=CaseType.DRIVER_COMPLIANCE,
    title="Driver compliance watch",
    path="",  # opened by the onboarding case at activation, never over the API
    workflow="workflows.driver_compliance:DriverComplianceWorkflow",
    router="api.routes.drivers_onboarding",
    open_body=DriverComplianceInput,
    workflow_input=DriverComplianceInput,
    policy=CompliancePolicy,
    details=ComplianceDetails,
    statuses={
        CaseStatus.MONITORING: "Every watched document is valid.",
        CaseStatus.RENEWAL_REQUESTED: "A document expires within 30 days; the driver has been "
        "asked for a replacement.",
        CaseStatus.SUSPENDED: "A document expired: the driver is suspended and must not be "
        "routed until a replacement is approved.",
        CaseStatus.CLOSED: "The driver was offboarded.",
    },
    resolutions={Resolution.OFFBOARDED: "The driver was offboarded; the watch ended."},
    actions=(
        *_document_actions(upload="Uploads a replacement for the driver (multipart: kind, file)."),
        *(a for a in _common_actions(cancel_title="", cancel_description="") if a.name != "cancel"),
    ),
    document_kinds=(
        DocumentKind.DRIVING_LICENCE,
        DocumentKind.PROOF_OF_INSURANCE,
        DocumentKind.VEHICLE_REGISTRATION,
    ),
    # Its renewal links are the driver's upload links: one purpose, one page, declared once
    # (by DRIVER_ONBOARDING); the page serves both driver case types.
    link_purposes=(),
    templates=(
        "compliance/renewal_request",
        "compliance/renewal_reminder",
        "compliance/coordinator_warning",
        "compliance/suspended",
        "compliance/reinstated",
        "case/escalation",
    ),
    stuck=StuckPolicy(
        waiting_windows={
            CaseStatus.SUSPENDED: timedelta(hours=72),  # a driver off routes
            CaseStatus.RENEWAL_REQUESTED: timedelta(days=30),
        }
    ),
)

UNPAID_INVOICE = CaseTypeSpec(
    case_type=CaseType.UNPAID_INVOICE,
    title="Unpaid invoice",
    path="unpaid-invoices",
    workflow="workflows.unpaid_invoice:UnpaidInvoiceWorkflow",
    first_view=unpaid_invoice_first_view,
    router="api.routes.unpaid_invoices",
    open_body=InvoiceOpen,
    workflow_input=UnpaidInvoiceInput,
    policy=DunningPolicy,
    details=InvoiceDetails,
    statuses={
        CaseStatus.AWAITING_PAYMENT: "Waiting for the balance: the dunning ladder's reminders "
        "go to the client's billing contact, ending in a dispatch hold.",
        CaseStatus.DISPUTED: "The client disputes the invoice; the ladder is paused until the "
        "dispute is resolved.",
        CaseStatus.PAYMENT_PROMISED: "The client promised to pay by a date; the ladder is "
        "paused until then.",
        CaseStatus.CLOSED: "Finished; the resolution says how.",
        CaseStatus.CANCELLED: "Cancelled by ops before it finished.",
    },
    resolutions={
        Resolution.PAID: "The invoice was paid in full (any overpayment is recorded as a credit).",
        Resolution.WRITTEN_OFF: "An admin wrote the balance off.",
        Resolution.CANCELLED: "Ops cancelled the case (e.g. the invoice was voided).",
    },
    actions=(
        ActionSpec(
            "payments",
            "Record a payment",
            "Money received against the invoice: the balance drops and the ladder goes on for "
            "the rest; paid in full closes the case. The same reference twice is recorded once.",
            PaymentIn,
            contracts.RECORD_PAYMENT,
            done="Payment recorded.",
        ),
        ActionSpec(
            "disputes",
            "Record a dispute",
            "The client contests the invoice: the ladder pauses and the account manager is told.",
            DisputeIn,
            contracts.OPEN_DISPUTE,
            done="Dispute recorded; the reminders are paused.",
        ),
        ActionSpec(
            "resolve-dispute",
            "Resolve the dispute",
            "upheld keeps the invoice, adjusted (with adjusted_amount) corrects its total; the "
            "ladder resumes, after a grace period when the due date has passed.",
            ResolveDisputeIn,
            contracts.RESOLVE_DISPUTE,
            route="disputes/resolve",
            done="Dispute resolved; the reminders resume.",
        ),
        ActionSpec(
            "promise-to-pay",
            "Record a promise to pay",
            "The client promised to pay by a date: the ladder pauses until then; paid in full "
            "by then closes the case, otherwise the reminders resume.",
            PromiseIn,
            contracts.PROMISE_TO_PAY,
            done="Promise recorded; the reminders are paused.",
        ),
        ActionSpec(
            "write-off",
            "Write off",
            "Writes the balance off (admins only): the case closes as written off.",
            WriteOffIn,
            contracts.WRITE_OFF,
            role=Role.ADMIN,
            done="Invoice written off.",
        ),
        *_common_actions(
            cancel_title="Cancel the case",
            cancel_description="Stops chasing the invoice (e.g. it was voided); it closes as "
            "cancelled.",
        ),
    ),
    document_kinds=(DocumentKind.INVOICE,),
    templates=(
        "dunning/before_due",
        "dunning/due_today",
        "dunning/overdue",
        "dunning/final_notice",
        "dunning/dispatch_hold",
        "dunning/promise_missed",
        "dunning/thank_you",
        "dunning/overpaid",
        "dunning/hold_set",
        "dunning/hold_lifted",
        "case/escalation",
    ),
    stuck=StuckPolicy(
        # The ladder waits weeks between its steps, and holds dispatches at its end.
        no_progress_after=timedelta(days=7),
        waiting_windows={CaseStatus.DISPUTED: timedelta(days=14)},
    ),
)

CASE_TYPES: Mapping[CaseType, CaseTypeSpec] = {
    spec.case_type: spec
    for spec in (
        FAILED_DELIVERY,
        DAMAGE_CLAIM,
        DRIVER_ONBOARDING,
        DRIVER_COMPLIANCE,
        UNPAID_INVOICE,
    )
}
"""Every case type that runs. `CaseType` may name more (coming types); only these exist."""


def spec_for(case_type: CaseType) -> CaseTypeSpec:
    return CASE_TYPES[case_type]


def spec_for_case_id(case_id: str) -> CaseTypeSpec | None:
    """The type of a case from its id (workflow id = `{type prefix}-{business key}`)."""
    for spec in CASE_TYPES.values():
        if case_id.startswith(f"{spec.case_type.workflow_id_prefix}-"):
            return spec
    return None


def link_purposes() -> dict[str, list[CaseTypeSpec]]:
    """Every signed-link purpose and the case types whose links carry it."""
    found: dict[str, list[CaseTypeSpec]] = {}
    for spec in CASE_TYPES.values():
        for purpose in spec.link_purposes:
            found.setdefault(purpose, []).append(spec)
    return found


def resolve_policy(case_type: CaseType, overrides: Mapping[str, Any] | None) -> Any:
    """The type's default policy with a client's overrides applied (validated: raises
    pydantic's ValidationError for a bad override)."""
    policy_type = spec_for(case_type).policy
    return policy_type.model_validate((overrides or {}).get(case_type.value, {}))
