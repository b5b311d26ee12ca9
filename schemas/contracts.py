"""The contracts between the API and the workflows, by name and type, in one place.

The API calls every update through its contract (`run_update(case, CHOOSE_REDELIVERY,
choice)`), so the argument's type is checked where the call is written and no update name is
typed at a call site. Each workflow's handler method carries the contract's name (a plain
`@workflow.update` keeps the SDK's typed handles for the workflow tests); `tests/
test_registry.py` checks that every contract names a handler of its case type's workflow,
taking the contract's input type. Nothing here imports the workflows or the activities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from temporalio.exceptions import ApplicationError

from schemas.cases import (
    AssignInput,
    CancelInput,
    DeliveryOutcomeReport,
    EscalateInput,
    FailedAttemptReport,
    NoteInput,
    RedeliveryChoice,
)
from schemas.claims import AddDocumentInput, DecisionInput, FileClaimInput
from schemas.invoices import (
    Dispute,
    DisputeResolution,
    HoldRelease,
    Payment,
    Promise,
    WriteOff,
)
from schemas.onboarding import OffboardInput, ReviewDocumentInput

In = TypeVar("In", bound=BaseModel)


@dataclass(frozen=True)
class UpdateContract(Generic[In]):
    """A workflow update every caller reaches by this object: its Temporal name and the
    model it takes. Every case update answers with the case's `CaseState`."""

    name: str
    input: type[In]


STATE_QUERY = "state"
"""The query every case workflow answers with its `CaseState`."""

# --- the updates every case type has --------------------------------------------------------

ADD_NOTE = UpdateContract("add_note", NoteInput)
ASSIGN = UpdateContract("assign", AssignInput)
ESCALATE = UpdateContract("escalate", EscalateInput)
CANCEL = UpdateContract("cancel", CancelInput)

# --- failed delivery --------------------------------------------------------------------------

CHOOSE_REDELIVERY = UpdateContract("choose_redelivery", RedeliveryChoice)
RECORD_DELIVERY_OUTCOME = UpdateContract("record_delivery_outcome", DeliveryOutcomeReport)
REPORT_FAILED_ATTEMPT = UpdateContract("report_failed_attempt", FailedAttemptReport)

# --- damage claim -----------------------------------------------------------------------------

ADD_DOCUMENT = UpdateContract("add_document", AddDocumentInput)
FILE_CLAIM = UpdateContract("file_claim", FileClaimInput)
RECORD_DECISION = UpdateContract("record_decision", DecisionInput)

# --- unpaid invoices --------------------------------------------------------------------------

RECORD_PAYMENT = UpdateContract("record_payment", Payment)
OPEN_DISPUTE = UpdateContract("open_dispute", Dispute)
RESOLVE_DISPUTE = UpdateContract("resolve_dispute", DisputeResolution)
PROMISE_TO_PAY = UpdateContract("promise_to_pay", Promise)
WRITE_OFF = UpdateContract("write_off", WriteOff)
RELEASE_HOLD = UpdateContract("release_hold", HoldRelease)

# --- drivers (onboarding and the compliance watch) -------------------------------------------

REVIEW_DOCUMENT = UpdateContract("review_document", ReviewDocumentInput)
OFFBOARD = UpdateContract("offboard", OffboardInput)


# --- failure types --------------------------------------------------------------------------

ACTION_NOT_ALLOWED = "ActionNotAllowed"
"""An update validator's refusal: the action does not fit the case's state (API: 409)."""
INVALID_REQUEST = "InvalidRequest"
"""An update validator's refusal: the payload is wrong for this case (API: 422 naming
`details[0]["field"]`)."""


class ActionNotAllowed(ApplicationError):
    """Raised by validators; carries the stable type `ActionNotAllowed`."""

    TYPE = ACTION_NOT_ALLOWED

    def __init__(self, message: str) -> None:
        super().__init__(message, type=self.TYPE, non_retryable=True)


class InvalidRequest(ApplicationError):
    """Raised by validators; carries the stable type `InvalidRequest` and the field."""

    TYPE = INVALID_REQUEST

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, {"field": field}, type=self.TYPE, non_retryable=True)


def failed_field(details: Sequence[Any]) -> str:
    """The field an `InvalidRequest` names (its first detail), `body` when it names none."""
    first = details[0] if details else {}
    return str(first.get("field", "body")) if isinstance(first, dict) else "body"


# --- signed links ---------------------------------------------------------------------------

RESCHEDULE_LINK = "reschedule"
"""A failed-delivery customer's link: choose how the parcel comes again."""
CLAIM_UPLOAD_LINK = "claim-upload"
"""A claim's driver or customer link: send the documents the claim asked for."""
DRIVER_UPLOAD_LINK = "driver-upload"
"""A driver's link: send the onboarding (or renewal) documents still required."""
