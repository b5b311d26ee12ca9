"""The failed-delivery case: from a failed attempt to a delivered or returned parcel.

Each failed attempt is recorded with the client's failed-attempt fee. Then the customer is
emailed a signed link to choose a redelivery window, a pickup point, a neighbour or a
corrected address; reminded after 24 h; the depot's dispatcher is told after 48 h; and
after the 5-day window with no answer the parcel goes back to the sender. A choice (from the
customer or from ops) books the redelivery, confirms it to the customer and tells the client
shipper; the case then waits for the delivery outcome. Delivered closes the case; a further
failure starts the next attempt, up to the attempt limit. A refused parcel goes back to the
sender at once. A damaged parcel is flagged for the claims process.

Policy values come from the `FailedDeliveryPolicy` snapshot in the input.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.records import RecordActivities
    from schemas import contracts
    from schemas.activities import (
        AttemptRecord,
        MessageRequest,
        Recipient,
        RedeliveryBooking,
        ShipmentStatusUpdate,
        SignedLink,
    )
    from schemas.case_types import DAMAGE_CLAIM
    from schemas.cases import (
        CaseSnapshot,
        CaseState,
        DeliveryOutcomeReport,
        FailedAttempt,
        FailedAttemptReport,
        FailedDeliveryCarry,
        FailedDeliveryDetails,
        FailedDeliveryInput,
        RedeliveryBooked,
        RedeliveryChoice,
    )
    from schemas.claims import DamageClaimInput, ReportedBy
    from schemas.contracts import ActionNotAllowed, InvalidRequest
    from schemas.documents import ClaimType
    from schemas.enums import (
        CaseStatus,
        CaseType,
        ContactKind,
        DeliveryOutcome,
        FailureReason,
        RedeliveryOption,
        Resolution,
        ShipmentStatus,
    )
    from schemas.openings import failed_delivery_first_view, last_attempt
    from schemas.policies import event_time_problem
    from schemas.ui_text import case_details, case_summary, local_time

from workflows.case import RECORD_OPTIONS, CaseWorkflow, FollowUp

# Where a run waits, and a continued run resumes (`CaseCarry.stage`).
ASKING = "asking-customer"
OUTCOME = "awaiting-outcome"


@workflow.defn
class FailedDeliveryWorkflow(CaseWorkflow):
    """One case per shipment (`failed-delivery-{shipment_id}`), across all its attempts."""

    case_type = CaseType.FAILED_DELIVERY
    escalates_to = "the depot's dispatcher"
    carry_model = FailedDeliveryCarry
    _input: FailedDeliveryInput

    @workflow.init
    def __init__(self, input: FailedDeliveryInput) -> None:
        self._input = input
        self._policy = input.policy
        self._attempt = input.attempt
        self._attempt_by = input.opened_by
        self._fees_cents = 0
        self._damage_reported = False
        self._choice: RedeliveryChoice | None = None
        self._booking: RedeliveryBooked | None = None
        # A change to the booked redelivery, taken before the cut-off and not yet booked.
        self._change: RedeliveryChoice | None = None
        self._changes = 0  # how many times a booking of this case was changed (message keys)
        self._next_attempt: FailedAttempt | None = None
        self._next_attempt_by = "routing"
        self._next_attempt_taken_at = workflow.now()
        self._delivered: DeliveryOutcomeReport | None = None
        # True from a new attempt until the customer is asked: no choice or outcome for the
        # previous attempt may slip in while the new one is being recorded.
        self._recording = False
        self._claim_case_id: str | None = None
        # The customer's window runs from when the attempt was taken in (here, or when a
        # later attempt is reported), so the deadline is known, and shown, from that moment.
        self._attempt_taken_at = input.opened_at or workflow.now()
        self._asked_at: datetime | None = None  # when the current attempt's window opened
        if input.carried is not None:
            self._resume(input.carried)
            return
        first = failed_delivery_first_view(input, self._attempt_taken_at)
        self._open_case(
            business_key=input.shipment_id,
            client_id=input.client_id,
            depot_id=input.depot_id,
            subject=self._subject(),
            opened_at=self._attempt_taken_at,
            deadline_at=first.deadline_at,
            next_step=first.step,
        )

    @workflow.run
    async def run(self, input: FailedDeliveryInput) -> CaseSnapshot:
        # A continued run resumes in the wait it continued from: asking the customer, or
        # waiting for the redelivery's outcome.
        stage = input.carried.stage if input.carried else None
        if stage is None:
            hold = input.client_dispatch_hold
            await self._opened(
                f"Case opened for shipment {input.shipment_id}"
                + (f"; the client's dispatches are on hold ({hold.reason})" if hold else ""),
                actor=input.opened_by,
                policy=input.policy,
            )
        attempt = self._attempt
        while not self._cancel_request:
            if stage is None:
                await self._record_attempt(attempt)
                if self._cancel_request:
                    break
                if attempt.reason is FailureReason.REFUSED:
                    await self._return_to_sender("the recipient refused the parcel")
                    break
                if attempt.attempt_number >= self._policy.max_attempts:
                    await self._return_to_sender(
                        f"attempt {attempt.attempt_number} of {self._policy.max_attempts} failed"
                    )
                    break
            answered = True  # a run continued while awaiting the outcome had its answer
            if stage != OUTCOME:
                answered = await self._ask_customer(resume=stage == ASKING)
            stage = None
            if self._cancel_request:
                break
            if self._next_attempt:
                attempt = self._take_next_attempt()
                continue
            if not answered:
                days = self._policy.customer_window / timedelta(days=1)
                await self._return_to_sender(f"no answer from the customer within {days:g} days")
                break
            await self._wait_for_outcome()
            if self._cancel_request:
                break
            if self._delivered:
                await self._close_delivered(self._delivered)
                break
            attempt = self._take_next_attempt()
        return await self._finish()

    # --- the steps -------------------------------------------------------------------------

    async def _record_attempt(self, attempt: FailedAttempt) -> None:
        self._recording = True
        self._attempt = attempt
        self._choice = self._booking = self._delivered = None
        fee = self._policy.failed_attempt_fee_cents
        self._fees_cents += fee
        note = f" Note: “{attempt.note}”" if attempt.note else ""
        self._event(
            "attempt_failed",
            f"Attempt {attempt.attempt_number} failed: {attempt.reason.description}{note}",
            actor=self._attempt_by,
            attempt_number=attempt.attempt_number,
            reason=attempt.reason.value,
            driver_id=attempt.driver_id,
            attempted_at=attempt.attempted_at.isoformat(),
            fee_cents=fee,
        )
        if attempt.reason is FailureReason.DAMAGED and not self._damage_reported:
            self._damage_reported = True
            self._event("damage_reported", "Parcel reported damaged; flagged for a damage claim")
            if workflow.patched("open-damage-claim"):
                await self._open_damage_claim(attempt)
        self._case.subject = self._subject()
        self._refresh_details()
        inp = self._input
        await workflow.execute_activity_method(
            RecordActivities.record_failed_attempt,
            AttemptRecord(
                case_id=self._case.case_id,
                shipment_id=inp.shipment_id,
                client_id=inp.client_id,
                depot_id=inp.depot_id,
                customer=inp.customer,
                address=inp.address,
                attempt=attempt,
                fee_cents=fee,
                currency=self._policy.currency,
            ),
            **RECORD_OPTIONS,
        )

    async def _open_damage_claim(self, attempt: FailedAttempt) -> None:
        """A damaged parcel opens the claim for its shipment (a child workflow that outlives
        this case), or links to the claim already open for it."""
        inp = self._input
        claim_id = DAMAGE_CLAIM.case_type.workflow_id(inp.shipment_id)
        note = f": {attempt.note}" if attempt.note else ""
        try:
            await workflow.start_child_workflow(
                DAMAGE_CLAIM.workflow_type,
                DamageClaimInput(
                    shipment_id=inp.shipment_id,
                    client_id=inp.client_id,
                    depot_id=inp.depot_id,
                    claim_type=ClaimType.DAMAGED,
                    reported_by=ReportedBy.OPS,
                    delivery_event_at=attempt.attempted_at,
                    description=f"Found damaged on delivery attempt {attempt.attempt_number}{note}",
                    customer=inp.customer,
                    driver_id=attempt.driver_id,
                    linked_case_id=self._case.case_id,
                    policy=inp.claim_policy,
                    timezone=inp.timezone,
                    opened_by=self._case.case_id,
                ),
                id=claim_id,
                static_summary=case_summary(DAMAGE_CLAIM.case_type, inp.shipment_id, inp.client_id),
                static_details=case_details(
                    DAMAGE_CLAIM.case_type,
                    subject=f"Shipment {inp.shipment_id} found damaged on delivery attempt "
                    f"{attempt.attempt_number} (opened by {self._case.case_id})",
                    client_id=inp.client_id,
                    depot_id=inp.depot_id,
                    zone_name=inp.timezone,
                    policy=inp.claim_policy,
                    key_dates={
                        "Filing deadline": attempt.attempted_at + inp.claim_policy.filing_window
                    },
                ),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,  # one claim per shipment
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
            self._event("claim_opened", f"Damage claim {claim_id} opened", claim_case_id=claim_id)
        except WorkflowAlreadyStartedError:
            self._event(
                "claim_linked",
                f"Linked to the open damage claim {claim_id}",
                claim_case_id=claim_id,
            )
        self._claim_case_id = claim_id
        self._refresh_details()

    async def _ask_customer(self, *, resume: bool = False) -> bool:
        """Send the reschedule link and wait for a choice (or a new attempt), reminding and
        escalating on the way. False when the window closes unanswered. `resume`: a continued
        run, whose customer was already asked: wait on."""
        policy = self._policy
        if not resume:
            started = self._attempt_taken_at if workflow.patched("window-from-attempt") else None
            self._asked_at = started or workflow.now()
        started = self._asked_at or workflow.now()
        give_up_at = started + policy.customer_window
        if not resume:
            self._recording = False  # the status changes in this same step, before any await
            await self._set_status(
                CaseStatus.WAITING_ON_CUSTOMER,
                f"Waiting for the customer to answer (attempt {self._attempt.attempt_number})",
                deadline_at=give_up_at,
            )
            if self._cancel_request:
                return True
            await self._send(
                self._to_customer("customer-notice", "failed_delivery/customer_notice"),
                describe="the missed-delivery email to the customer",
            )
        follow_ups = [
            FollowUp(started + policy.reminder_after, "remind the customer", self._remind),
            FollowUp(
                started + policy.escalate_after,
                "escalate to the dispatcher",
                self._escalate_unanswered,
            ),
        ]
        while True:
            answered = await self._wait(
                lambda: self._choice is not None or self._next_attempt is not None,
                stage=ASKING,
                follow_ups=follow_ups,
                give_up_at=give_up_at,
                give_up_label="return to sender",
            )
            if not answered or self._cancel_request or self._next_attempt:
                return answered
            if await self._book_redelivery():
                return True
            # The booking was refused (and escalated): wait on for another choice, with only
            # the steps still ahead (one that came due meanwhile is not run late).
            follow_ups = self._skip_past(follow_ups)

    async def _remind(self) -> None:
        await self._send(
            self._to_customer("customer-reminder", "failed_delivery/customer_reminder"),
            describe="the reminder to the customer",
        )

    async def _escalate_unanswered(self) -> None:
        hours = self._policy.escalate_after / timedelta(hours=1)
        reason = (
            f"No answer from the customer {hours:g} h after attempt {self._attempt.attempt_number}"
        )
        await self._escalate(
            reason,
            step=f"a{self._attempt.attempt_number}/dispatcher-escalation",
            numbered=False,
            template="failed_delivery/dispatcher_escalation",
        )

    async def _book_redelivery(self) -> bool:
        """Book `self._choice` (a first answer, or a change: `self._changes` counts them)."""
        choice = self._choice
        assert choice is not None
        again = f"-{self._changes}" if self._changes else ""  # a change's own message keys
        try:
            booking = await workflow.execute_activity_method(
                RecordActivities.schedule_redelivery,
                RedeliveryBooking(
                    case_id=self._case.case_id,
                    shipment_id=self._input.shipment_id,
                    depot_id=self._input.depot_id,
                    choice=choice,
                    decided_at=workflow.now(),
                ),
                **RECORD_OPTIONS,
            )
        except ActivityError as err:
            self._choice = None
            reason = f"Could not book the redelivery: {err.cause}"
            step = f"a{self._attempt.attempt_number}/booking-failed{again}"
            await self._escalate(reason, step=step)
            return False
        if self._cancel_request:
            return True
        self._booking = booking
        self._refresh_details()
        await self._set_status(
            CaseStatus.REDELIVERY_SCHEDULED,
            f"Redelivery {'changed' if again else 'booked'}: {booking.summary}",
            actor=choice.by,
            deadline_at=booking.expected_by,
        )
        n = self._attempt.attempt_number
        context: dict[str, object] = {
            "summary": booking.summary,
            "delivery_date": booking.delivery_date.isoformat(),
            "changed": bool(again),
        }
        until = self._change_until()
        changeable = until is not None and until > workflow.now()
        if until is not None and changeable:  # (both: mypy narrows only the first)
            context["change_until"] = local_time(until, self._input.timezone)
        await self._send(
            self._to_customer(
                f"redelivery-confirmation{again}",
                "failed_delivery/redelivery_confirmation",
                link=changeable,  # the same page changes the booking until the cut-off
                **context,
            ),
            describe="the redelivery confirmation to the customer",
        )
        await self._send(
            self._message(
                f"a{n}/client-notice{again}",
                "failed_delivery/client_redelivery_notice",
                self._client_contact(ContactKind.SHIPMENT_NOTIFICATIONS),
                **self._context(),
                **context,
            ),
            describe="the redelivery notice to the client shipper",
        )
        return True

    async def _wait_for_outcome(self) -> None:
        """Wait for the redelivery's outcome; a change to the booking before its cut-off is
        booked on the way (and the wait goes on with the new booking's times)."""
        while True:
            assert self._booking is not None
            overdue_at = self._booking.expected_by + self._policy.outcome_grace
            follow_ups = [
                FollowUp(overdue_at, "escalate: no delivery outcome", self._escalate_no_outcome)
            ]
            until = self._change_until()
            if until is not None and until > workflow.now():
                # The next step as ops read it; a change's own label, so each one fires once.
                label = "booking fixed (change cut-off)" + (
                    f" after change {self._changes}" if self._changes else ""
                )
                follow_ups.insert(0, FollowUp(until, label, self._close_changes))
            await self._wait(
                lambda: (
                    self._delivered is not None
                    or self._next_attempt is not None
                    or self._change is not None
                ),
                stage=OUTCOME,
                follow_ups=follow_ups,
                give_up_at=None,
            )
            ended = self._cancel_request or self._next_attempt or self._delivered
            if self._change is None or ended:
                return
            await self._rebook()

    async def _rebook(self) -> None:
        """Book the change; when that fails (escalated), the booking made before stands."""
        change, self._change = self._change, None
        previous = self._choice, self._booking
        self._choice = change
        self._changes += 1
        if not await self._book_redelivery():
            self._choice, self._booking = previous
            self._refresh_details()

    async def _close_changes(self) -> None:
        self._event(
            "booking_fixed",
            "The booked redelivery can no longer be changed: the depot is planning the route",
        )

    async def _escalate_no_outcome(self) -> None:
        reason = (
            f"No delivery outcome reported for the redelivery booked as "
            f"{self._booking.summary if self._booking else 'planned'}"
        )
        await self._escalate(
            reason, step=f"a{self._attempt.attempt_number}/no-outcome", numbered=False
        )

    def _take_next_attempt(self) -> FailedAttempt:
        attempt, self._next_attempt = self._next_attempt, None
        assert attempt is not None
        self._attempt_by = self._next_attempt_by
        self._attempt_taken_at = self._next_attempt_taken_at
        return attempt

    async def _return_to_sender(self, why: str) -> None:
        self._recording = False
        await self._set_status(CaseStatus.RETURNING_TO_SENDER, f"Returning to sender: {why}")
        await self._update_shipment(ShipmentStatus.RETURNING_TO_SENDER)
        await self._send(
            self._to_customer(
                "return-to-sender", "failed_delivery/return_to_sender_customer", link=False
            ),
            describe="the return-to-sender notice to the customer",
        )
        await self._send(
            self._message(
                "return-to-sender/client",
                "failed_delivery/return_to_sender_client",
                self._client_contact(ContactKind.SHIPMENT_NOTIFICATIONS),
                **self._context(),
                escalation_reason=why,
            ),
            describe="the return-to-sender notice to the client shipper",
        )
        await self._close(Resolution.RETURNED_TO_SENDER, "Closed: parcel returned to sender")

    async def _close_delivered(self, report: DeliveryOutcomeReport) -> None:
        await self._update_shipment(ShipmentStatus.DELIVERED)
        await self._close(
            Resolution.DELIVERED,
            "Delivered; case closed",
            actor=report.by,
            delivered_at=report.attempted_at.isoformat(),
        )

    async def _update_shipment(self, status: ShipmentStatus) -> None:
        await workflow.execute_activity_method(
            RecordActivities.update_shipment_status,
            ShipmentStatusUpdate(
                case_id=self._case.case_id,
                shipment_id=self._input.shipment_id,
                status=status,
                at=workflow.now(),
            ),
            **RECORD_OPTIONS,
        )

    # --- messages --------------------------------------------------------------------------

    def _context(self) -> dict[str, object]:
        return {
            "shipment_id": self._input.shipment_id,
            "attempt_number": self._attempt.attempt_number,
            "reason": self._attempt.reason.value,
        }

    def _customer_context(self) -> dict[str, object]:
        deadline = self._case.deadline_at
        return {**self._context(), "respond_by": deadline.isoformat() if deadline else None}

    def _to_customer(
        self, step: str, template: str, *, link: bool = True, **context: object
    ) -> MessageRequest:
        customer = self._input.customer
        request = self._message(
            f"a{self._attempt.attempt_number}/{step}",
            template,
            Recipient(role="customer", email=customer.email, name=customer.name),
            **self._customer_context(),
            **context,
        )
        if link and self._case.deadline_at:
            request.link = SignedLink(
                purpose=contracts.RESCHEDULE_LINK,
                expires_at=self._case.deadline_at,
                data={"attempt": self._attempt.attempt_number},
            )
        return request

    def _escalation_recipient(self) -> Recipient:
        return Recipient(role="dispatcher", depot_id=self._input.depot_id)

    # --- state -----------------------------------------------------------------------------

    async def _close(self, resolution: Resolution, summary: str, **kwargs: Any) -> None:
        # The title follows the case: a closed case no longer reads "attempt 2 failed".
        self._case.subject = self._closed_subject(resolution)
        await super()._close(resolution, summary, **kwargs)

    def _closed_subject(self, resolution: Resolution) -> str:
        failed = self._attempt.attempt_number
        attempts = f"{failed} failed attempt{'s' if failed != 1 else ''}"
        if resolution is Resolution.DELIVERED:
            return f"Shipment {self._input.shipment_id}: delivered after {attempts}"
        if resolution is Resolution.RETURNED_TO_SENDER:
            return f"Shipment {self._input.shipment_id}: returned to sender after {attempts}"
        return self._subject()

    def _subject(self) -> str:
        return (
            f"Shipment {self._input.shipment_id}: attempt {self._attempt.attempt_number} "
            f"failed ({self._attempt.reason.value.replace('_', ' ')})"
        )

    def _details(self) -> FailedDeliveryDetails:
        return FailedDeliveryDetails(
            shipment_id=self._input.shipment_id,
            depot_id=self._input.depot_id,
            attempt_number=self._attempt.attempt_number,
            max_attempts=self._policy.max_attempts,
            last_reason=self._attempt.reason,
            damage_reported=self._damage_reported,
            fees_cents=self._fees_cents,
            currency=self._policy.currency,
            redelivery=self._booking.summary if self._booking else None,
            redelivery_option=self._choice.option if self._choice else None,
            changeable_until=self._change_until(),
            claim_case_id=self._claim_case_id,
            client_dispatch_hold=self._input.client_dispatch_hold,
            policy=self._policy,
        )

    def _scope(self) -> str:
        return f"a{self._attempt.attempt_number}"

    def _event_budget(self) -> int:
        return self._policy.history_event_budget

    def _last_attempt(self, attempt: FailedAttempt) -> bool:
        """This attempt sends the parcel back: refused, or the attempt limit reached."""
        return last_attempt(self._policy, attempt)

    def allowed_actions(self) -> list[str]:
        actions = super().allowed_actions()
        if self._case.status.is_terminal or self._finishing():
            return actions
        if self._next_attempt is None:
            actions.append("failed-attempt")  # a later attempt is never refused while open
        if self._recording or self._next_attempt:
            return actions
        status = self._case.status
        if status is CaseStatus.WAITING_ON_CUSTOMER and self._choice is None:
            actions.append("redelivery")
        elif status is CaseStatus.REDELIVERY_SCHEDULED and self._booking is not None:
            actions.append("delivery-outcome")
            if self._change is None and self._changeable():
                actions.append("redelivery")  # a change, until the cut-off
        return actions

    def _change_until(self) -> datetime | None:
        """Until when the booked redelivery may be changed: the policy's cut-off before its
        route day (None when nothing is booked, or the booking predates changes)."""
        booking = self._booking
        if booking is None or booking.route_day_starts_at is None:
            return None
        return booking.route_day_starts_at - self._policy.change_cutoff

    def _changeable(self) -> bool:
        until = self._change_until()
        return until is not None and workflow.now() < until

    def _finishing(self) -> bool:
        """On the way to closed: cancelled, delivered, or the current attempt is the last
        (refused, or the attempt limit) and the parcel goes back."""
        return (
            super()._finishing()
            or self._delivered is not None
            or self._case.status is CaseStatus.RETURNING_TO_SENDER
            or self._last_attempt(self._attempt)
        )

    # --- updates ---------------------------------------------------------------------------

    @workflow.update
    async def choose_redelivery(self, choice: RedeliveryChoice) -> CaseState:
        """The customer's (or ops') answer to the missed-delivery email, or a change to the
        booked redelivery before its cut-off (booked by the wait for the outcome)."""
        who = "Customer" if choice.by == "customer" else choice.by
        changing = self._case.status is CaseStatus.REDELIVERY_SCHEDULED
        if changing:
            self._change = choice
        else:
            self._choice = choice
        self._event(
            "redelivery_changed" if changing else "redelivery_chosen",
            f"{who} {'changed the booking to' if changing else 'chose'}: "
            f"{choice.option.description}",
            actor=choice.by,
            option=choice.option.value,
        )
        return self._ack()

    def _check_reported_at(self, at: datetime) -> None:
        """An attempt's time: not in the future, not older than the policy allows."""
        problem = event_time_problem(at, workflow.now(), self._policy.attempt_max_age)
        if problem is not None:
            raise InvalidRequest("attempted_at", problem)

    @choose_redelivery.validator
    def _validate_choose_redelivery(self, choice: RedeliveryChoice) -> None:
        self._require("redelivery")
        current = self._attempt.attempt_number
        if choice.attempt_number != current:
            raise ActionNotAllowed(
                f"this answer is for attempt {choice.attempt_number}; the current attempt is "
                f"{current}"
            )
        if choice.option is RedeliveryOption.REDELIVERY_WINDOW:
            assert choice.date is not None
            today = workflow.now().date()
            last = today + self._policy.redelivery_horizon
            if not today < choice.date <= last:
                raise InvalidRequest(
                    "date", f"date must be between {today + timedelta(days=1)} and {last}"
                )

    @workflow.update
    async def record_delivery_outcome(self, report: DeliveryOutcomeReport) -> CaseState:
        """What happened on the booked redelivery (from the routing system or ops)."""
        if report.outcome is DeliveryOutcome.DELIVERED:
            self._delivered = report
        else:
            assert report.reason is not None
            self._next_attempt_by = report.by
            self._next_attempt_taken_at = workflow.now()
            self._next_attempt = FailedAttempt(
                attempt_number=self._attempt.attempt_number + 1,
                reason=report.reason,
                driver_id=report.driver_id or self._attempt.driver_id,
                attempted_at=report.attempted_at,
                note=report.note,
            )
        return self._ack()

    @record_delivery_outcome.validator
    def _validate_record_delivery_outcome(self, report: DeliveryOutcomeReport) -> None:
        self._require("delivery-outcome")
        self._check_reported_at(report.attempted_at)
        current = self._attempt.attempt_number
        if report.attempt_number is not None and report.attempt_number != current:
            raise ActionNotAllowed(
                f"this outcome is for attempt {report.attempt_number}; the booked redelivery "
                f"follows attempt {current}"
            )

    @workflow.update
    async def report_failed_attempt(self, report: FailedAttemptReport) -> CaseState:
        """A later failed attempt of the same shipment, reported while the case is open."""
        self._next_attempt_by = report.by
        self._next_attempt_taken_at = workflow.now()
        self._next_attempt = report.attempt
        return self._ack()

    @report_failed_attempt.validator
    def _validate_report_failed_attempt(self, report: FailedAttemptReport) -> None:
        self._require("failed-attempt")
        self._check_reported_at(report.attempt.attempted_at)
        if report.attempt.attempt_number <= self._attempt.attempt_number:
            raise ActionNotAllowed(
                f"attempt {report.attempt.attempt_number} is already recorded; the current "
                f"attempt is {self._attempt.attempt_number}"
            )
