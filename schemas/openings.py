"""What a case's opening determines before its workflow has run a task: its deadline, its
first step and the actions it allows. The workflow's `@workflow.init` takes its deadline and
first step from these functions, and the API answers an opening (the 201) with them, so that
answer never waits on the worker's backlog and says what a read right after says.

Every function reads the workflow input and `at`, the moment the case's clock starts: the
input's `opened_at` (set by the API) or, for a case another case opened, its first workflow
task's time. `tests/workflows/test_first_view.py` holds each type's allowed actions against
the workflow's own `allowed_actions()` after its first task."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.cases import FailedAttempt, FailedDeliveryInput
from schemas.claims import DamageClaimInput
from schemas.enums import FailureReason
from schemas.invoices import UnpaidInvoiceInput, opening_plan
from schemas.onboarding import DriverOnboardingInput, onboarding_reminders
from schemas.policies import ClaimPolicy, FailedDeliveryPolicy

OPEN_ACTIONS = ("notes", "assign", "escalate", "cancel")
"""What every open case allows (`CaseWorkflow.allowed_actions`)."""


@dataclass(frozen=True)
class FirstView:
    deadline_at: datetime | None
    next_step: str | None
    next_step_at: datetime | None
    allowed_actions: tuple[str, ...]

    @property
    def step(self) -> tuple[str, datetime] | None:
        """The first step as `CaseWorkflow._open_case` takes it."""
        if self.next_step is None or self.next_step_at is None:
            return None
        return self.next_step, self.next_step_at


def last_attempt(policy: FailedDeliveryPolicy, attempt: FailedAttempt) -> bool:
    """This attempt sends the parcel back: refused, or the attempt limit reached."""
    return attempt.reason is FailureReason.REFUSED or attempt.attempt_number >= policy.max_attempts


def failed_delivery_first_view(case: FailedDeliveryInput, at: datetime) -> FirstView:
    """The customer's window runs from when the attempt was taken in; a last attempt asks
    nobody and goes straight back to the sender."""
    policy = case.policy
    if last_attempt(policy, case.attempt):  # on its way back: no cancel, no later attempt
        return FirstView(None, "return to sender", at, ("notes", "assign", "escalate"))
    return FirstView(
        at + policy.customer_window,
        "remind the customer",
        at + policy.reminder_after,
        (*OPEN_ACTIONS, "failed-attempt"),
    )


def claim_follow_ups(
    policy: ClaimPolicy, anchor: datetime, deadline: datetime
) -> list[tuple[str, datetime]]:
    """A round's reminders (counted from `anchor`) and the claims-desk escalation before the
    filing deadline: (label, when)."""
    plan = [(f"reminder {i}", anchor + after) for i, after in enumerate(policy.reminders_after, 1)]
    plan.append(("escalate to the claims desk", deadline - policy.escalate_before_deadline))
    return plan


def claim_deadline(case: DamageClaimInput) -> datetime:
    """The filing deadline: the policy's window (72 h) after the delivery event."""
    return case.delivery_event_at + case.policy.filing_window


def damage_claim_first_view(case: DamageClaimInput, at: datetime) -> FirstView:
    """The first of round 1's follow-ups (counted from the delivery event) still ahead."""
    deadline = claim_deadline(case)
    plan = claim_follow_ups(case.policy, case.delivery_event_at, deadline)
    label, when = next(((s, t) for s, t in plan if t > at), (None, None))
    return FirstView(deadline, label, when, OPEN_ACTIONS)


def driver_onboarding_first_view(case: DriverOnboardingInput, at: datetime) -> FirstView:
    """Abandoned after the policy's span; the first reminder one `reminder_every` in. Every
    item starts requested, so documents are taken from the start."""
    label, when = next(iter(onboarding_reminders(case.policy, at)), (None, None))
    return FirstView(at + case.policy.abandon_after, label, when, (*OPEN_ACTIONS, "documents"))


def unpaid_invoice_first_view(case: UnpaidInvoiceInput, at: datetime) -> FirstView:
    """The latest ladder step already due (sent at once), else the next one ahead."""
    send_now, _, ahead = opening_plan(case.policy.ladder(case.due_on), at)
    first = send_now or (ahead[0] if ahead else None)
    actions = (*OPEN_ACTIONS, "payments", "write-off", "disputes", "promise-to-pay")
    if first is None:
        return FirstView(None, None, None, actions)
    return FirstView(first.at, first.step.name, first.at, actions)
