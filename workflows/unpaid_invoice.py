"""The unpaid-invoice case: a dunning ladder anchored to the due date, payments against the
balance, disputes and promises that pause it, a dispatch hold at its end.

Each ladder step emails the client's billing contact from its own template (the account
manager copied where the policy says); a case opened part-way down sends only the latest step
already due, once. A payment lowers the balance and the ladder goes on for the rest; the
balance paid closes the case (thanks sent, a dispatch hold lifted, a credit reported to the
account manager). A dispute pauses the ladder and escalates; its resolution resumes it with
the new balance and, past the due date, a grace period before the next step. A promise
pauses it until the promised day; a broken one resumes it and tells the account manager.
The hold is set on the client's record; the dispatchers of the client's depots and the
account manager are told when it is set and when it is lifted (paid in full, an admin's
release, the case cancelled). Nothing is sent once the balance is paid or written off: every
step checks before sending.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.invoices import InvoiceActivities
    from schemas.activities import Recipient
    from schemas.cases import CaseSnapshot, CaseState
    from schemas.contracts import ActionNotAllowed, InvalidRequest
    from schemas.enums import CaseStatus, CaseType, ContactKind, Resolution
    from schemas.invoices import (
        ClientDepotsRequest,
        DispatchHoldChange,
        Dispute,
        DisputeOutcome,
        DisputeResolution,
        HoldRelease,
        InvoiceDetails,
        MoneyError,
        Payment,
        Promise,
        ScheduledStep,
        UnpaidInvoiceCarry,
        UnpaidInvoiceInput,
        WriteOff,
        exact,
        opening_plan,
    )
    from schemas.openings import unpaid_invoice_first_view
    from schemas.ui_text import offset_words

from workflows.case import RECORD_OPTIONS, CaseWorkflow, FollowUp

# Where the run waits (`CaseCarry.stage`).
LADDER = "dunning"
DISPUTED = "disputed"
PROMISED = "promised"

# Cases that set a hold before this tell no dispatcher (their histories replay as they ran).
HOLD_NOTICES = "hold-tells-dispatchers"
CANCEL_LIFTS_HOLD = "cancel-lifts-hold"


@workflow.defn
class UnpaidInvoiceWorkflow(CaseWorkflow):
    """One case per invoice (`unpaid-invoice-{invoice_id}`)."""

    case_type = CaseType.UNPAID_INVOICE
    escalates_to = "the client's account manager"
    carry_model = UnpaidInvoiceCarry
    _input: UnpaidInvoiceInput

    @workflow.init
    def __init__(self, input: UnpaidInvoiceInput) -> None:
        self._input = input
        self._policy = input.policy
        self._amount = input.amount
        self._balance = input.amount
        self._zero = exact(Decimal(0), input.minor_units)  # 0.00 in GBP, 0 in JPY
        self._credit = self._zero
        self._payments: list[Payment] = []
        self._dispute: Dispute | None = None
        self._resolved: DisputeResolution | None = None
        self._promise: Promise | None = None
        self._shift = timedelta(0)  # how far pauses moved the steps still ahead
        self._hold = False
        self._hold_depots: list[str] = []  # whose dispatchers were told of the hold
        self._write_off: WriteOff | None = None
        self._steps_sent: list[str] = []
        if input.carried is not None:
            self._resume(input.carried)
            return
        opened_at = input.opened_at or workflow.now()
        first = unpaid_invoice_first_view(input, opened_at)
        self._open_case(
            business_key=input.invoice_id,
            client_id=input.client_id,
            depot_id=None,
            subject=f"Invoice {input.invoice_id}: {input.amount} {input.currency} due "
            f"{input.due_on.isoformat()}",
            opened_at=opened_at,
            deadline_at=first.deadline_at,
            next_step=first.step,
        )

    @workflow.run
    async def run(self, input: UnpaidInvoiceInput) -> CaseSnapshot:
        if input.carried is None:
            await self._opened(
                f"Invoice {input.invoice_id} opened: {input.amount} {input.currency}, due "
                f"{input.due_on.isoformat()}",
                actor=input.opened_by,
                policy=input.policy,
            )
            if input.delivery_problem:
                # The invoicing run could not email the invoice: a person sends it. (Only
                # set by runs since this field existed: older histories never take it.)
                await self._escalate(
                    f"Invoice {input.invoice_id} did not reach the billing contact: "
                    f"{input.delivery_problem}",
                    step="invoice-not-delivered",
                    numbered=False,
                )
            # Opened part-way down: the steps before the latest due one are never sent.
            _, skipped, _ = opening_plan(self._ladder(), input.opened_at or workflow.now())
            self._fired.update(f"{self._scope()}:{s.step.name}" for s in skipped)
            await self._set_status(
                CaseStatus.AWAITING_PAYMENT, "Waiting for payment", deadline_at=self._next_at()
            )
        while not self._settled():
            if self._dispute is not None:
                await self._wait(
                    lambda: self._resolved is not None or self._settled(),
                    stage=DISPUTED,
                    give_up_at=None,
                )
                if self._resolved is not None:
                    await self._resume_after_dispute(self._resolved)
            elif self._promise is not None:
                kept = await self._wait(
                    self._settled,
                    stage=PROMISED,
                    give_up_at=self._promise_deadline(self._promise),
                    give_up_label="check the promised payment",
                )
                if not kept:
                    await self._promise_broken(self._promise)
            else:
                await self._wait(
                    lambda: self._settled() or self._paused(),
                    stage=LADDER,
                    follow_ups=self._follow_ups(),
                    give_up_at=None,
                )
        if self._write_off is not None:
            await self._close(
                Resolution.WRITTEN_OFF,
                f"Written off: {self._write_off.reason}",
                actor=self._write_off.by,
            )
        elif self._balance <= 0:
            await self._close_paid()
        return await self._finish()

    # --- the ladder ----------------------------------------------------------------------------

    def _ladder(self) -> list[ScheduledStep]:
        return self._policy.ladder(self._input.due_on)

    def _follow_ups(self) -> list[FollowUp]:
        return [
            FollowUp(
                s.at + self._shift,
                s.step.name,
                self._step_action(s),
                summary=f"send: dunning step {s.step.name} (due {offset_words(s.step.offset)})",
            )
            for s in self._ladder()
        ]

    def _unsent(self) -> list[ScheduledStep]:
        return [s for s in self._ladder() if f"{self._scope()}:{s.step.name}" not in self._fired]

    def _next_at(self) -> datetime | None:
        unsent = self._unsent()
        return unsent[0].at + self._shift if unsent else None

    def _step_action(self, scheduled: ScheduledStep) -> Callable[[], Awaitable[None]]:
        step = scheduled.step

        async def act() -> None:
            # Checked at the moment of sending: a payment, dispute or promise that arrived
            # with the timer wins, and nothing goes out. A paused step is not spent: it goes
            # out when the ladder resumes (after the grace period).
            if self._settled():
                return
            if self._paused():
                self._fired.discard(f"{self._scope()}:{step.name}")
                return
            self._steps_sent.append(step.name)
            self._refresh_details()
            context = self._context()
            billing = self._message(
                step.name, step.template, self._client_contact(ContactKind.BILLING), **context
            )
            if self._input.invoice_pdf is not None:
                billing.attachments = [self._input.invoice_pdf]
            await self._send(billing, describe=f"the {step.name} email to the billing contact")
            if step.copy_account_manager:
                copy = self._message(
                    f"{step.name}/account-manager",
                    step.template,
                    self._client_contact(ContactKind.ACCOUNT_MANAGER),
                    **context,
                )
                await self._send(copy, describe=f"the copy of {step.name} to the account manager")
            if step.hold_dispatches and not self._hold:
                await self._set_hold(f"invoice {self._input.invoice_id} unpaid")
            if step.escalate:
                await self._escalate(
                    f"Invoice {self._input.invoice_id} still unpaid at {step.name}: balance "
                    f"{self._balance} {self._input.currency}",
                    step=f"{step.name}/escalation",
                    numbered=False,
                )
            await self._set_status(
                self._case.status, f"Sent: {step.name}", deadline_at=self._next_at()
            )

        return act

    async def _hold_change(self, hold: bool, reason: str) -> None:
        await workflow.execute_activity_method(
            InvoiceActivities.set_dispatch_hold,
            DispatchHoldChange(
                client_id=self._input.client_id,
                case_id=self._case.case_id,
                hold=hold,
                reason=reason,
            ),
            **RECORD_OPTIONS,
        )

    async def _set_hold(self, reason: str) -> None:
        """Hold the client's new dispatches and tell the dispatchers of its depots (the
        account manager hears from the step's escalation)."""
        self._hold = True
        await self._hold_change(True, reason)
        self._event("dispatch_hold", f"Dispatch hold set: {reason}")
        self._refresh_details()
        if not workflow.patched(HOLD_NOTICES):
            return
        depots = await workflow.execute_activity_method(
            InvoiceActivities.client_depots,
            ClientDepotsRequest(client_id=self._input.client_id),
            **RECORD_OPTIONS,
        )
        self._hold_depots = list(depots.depot_ids)
        self._refresh_details()
        if not self._hold_depots:
            self._event("dispatch_hold", "No depot has handled this client's shipments yet")
        for depot_id in self._hold_depots:
            await self._send(
                self._message(
                    f"dispatch-hold/dispatcher-{depot_id}",
                    "dunning/hold_set",
                    Recipient(role="dispatcher", depot_id=depot_id),
                    **self._context(),
                    hold_reason=reason,
                ),
                describe=f"the hold notice to the dispatcher of {depot_id}",
            )

    async def _lift_hold(self, reason: str, *, actor: str = "system") -> None:
        """Lift the hold on the client's record (the notices go out with `_tell_lifted`)."""
        self._hold = False
        await self._hold_change(False, reason)
        self._event("dispatch_hold", f"Hold lifted: {reason}", actor=actor)
        self._refresh_details()

    async def _tell_lifted(self, reason: str) -> None:
        """The dispatchers told of the hold, and the account manager, hear it is lifted."""
        if not workflow.patched(HOLD_NOTICES):
            return
        context = {**self._context(), "hold_reason": reason}
        for depot_id in self._hold_depots:
            await self._send(
                self._message(
                    f"hold-lifted/dispatcher-{depot_id}",
                    "dunning/hold_lifted",
                    Recipient(role="dispatcher", depot_id=depot_id),
                    **context,
                ),
                describe=f"the hold-lifted notice to the dispatcher of {depot_id}",
            )
        await self._send(
            self._message(
                "hold-lifted/account-manager",
                "dunning/hold_lifted",
                self._escalation_recipient(),
                **context,
            ),
            describe="the hold-lifted notice to the account manager",
        )

    # --- pauses --------------------------------------------------------------------------------

    def _paused(self) -> bool:
        return self._dispute is not None or self._promise is not None

    def _settled(self) -> bool:
        return self._balance <= 0 or self._write_off is not None or self._cancel_request is not None

    def _grace(self) -> None:
        """Past the due date, the next step waits at least the policy's grace period."""
        now = workflow.now()
        due = datetime.combine(self._input.due_on, time(0), tzinfo=UTC)
        nxt = self._next_at()
        if now < due or nxt is None:
            return
        earliest = now + self._policy.grace_after_pause
        if nxt < earliest:
            self._shift += earliest - nxt

    async def _resume_after_dispute(self, resolution: DisputeResolution) -> None:
        if resolution.outcome is DisputeOutcome.ADJUSTED and resolution.adjusted_amount is not None:
            paid = sum((p.amount for p in self._payments), Decimal(0))
            self._amount = resolution.adjusted_amount
            self._balance = max(self._zero, self._amount - paid)
            self._credit = max(self._zero, paid - self._amount)
        self._dispute, self._resolved = None, None
        self._grace()
        self._refresh_details()
        await self._set_status(
            CaseStatus.AWAITING_PAYMENT,
            f"Dispute {resolution.outcome.value}: balance {self._balance} {self._input.currency}",
            actor=resolution.by,
            deadline_at=self._next_at(),
        )

    def _promise_deadline(self, promise: Promise) -> datetime:
        return datetime.combine(promise.promised_on + timedelta(days=1), time(0), tzinfo=UTC)

    async def _promise_broken(self, promise: Promise) -> None:
        self._promise = None
        self._grace()
        self._refresh_details()
        reason = (
            f"Promise to pay {promise.amount} {self._input.currency} by "
            f"{promise.promised_on.isoformat()} was missed"
        )
        await self._send(
            self._message(
                f"promise-missed-{promise.promised_on.isoformat()}",
                "dunning/promise_missed",
                self._client_contact(ContactKind.BILLING),
                **self._context(),
            ),
            describe="the missed-promise email to the billing contact",
        )
        await self._escalate(reason, step=f"promise-missed-{promise.promised_on.isoformat()}")
        await self._set_status(CaseStatus.AWAITING_PAYMENT, reason, deadline_at=self._next_at())

    # --- closing -------------------------------------------------------------------------------

    async def _close_paid(self) -> None:
        held = self._hold
        await self._send(
            self._message(
                "paid",
                "dunning/thank_you",
                self._client_contact(ContactKind.BILLING),
                **{**self._context(), "days_overdue": 0},  # nothing is overdue any more
                hold_lifted=held,
            ),
            describe="the thank-you to the billing contact",
        )
        if held:
            reason = f"invoice {self._input.invoice_id} paid in full"
            await self._lift_hold(reason)
            await self._tell_lifted(reason)
        if self._credit > 0:
            await self._notify_escalation(
                f"Invoice {self._input.invoice_id} overpaid: credit {self._credit} "
                f"{self._input.currency}",
                key="overpaid",
                template="dunning/overpaid",
            )
        await self._close(Resolution.PAID, "Paid in full")

    # --- state ---------------------------------------------------------------------------------

    def _context(self) -> dict[str, Any]:
        now = workflow.now().date()
        credit = {"credit": str(self._credit)} if self._credit > 0 else {}
        return {
            **credit,
            "invoice_id": self._input.invoice_id,
            "reference": self._input.reference,
            "currency": self._input.currency,
            "client_id": self._input.client_id,
            "client_name": self._input.client_name or self._input.client_id,
            "amount": str(self._amount),
            "balance": str(self._balance),
            "due_on": self._input.due_on.isoformat(),
            "days_overdue": max(0, (now - self._input.due_on).days),
        }

    def _escalation_recipient(self) -> Recipient:
        return self._client_contact(ContactKind.ACCOUNT_MANAGER)

    def _event_budget(self) -> int:
        return self._policy.history_event_budget

    def _details(self) -> InvoiceDetails:
        return InvoiceDetails(
            invoice_id=self._input.invoice_id,
            reference=self._input.reference,
            currency=self._input.currency,
            amount=self._amount,
            balance=self._balance,
            credit=self._credit,
            issued_on=self._input.issued_on,
            due_on=self._input.due_on,
            payments=list(self._payments),
            documents=[self._input.invoice_pdf] if self._input.invoice_pdf else [],
            dispute=self._dispute,
            promise=self._promise,
            dispatch_hold=self._hold,
            hold_depots=list(self._hold_depots),
            steps_sent=list(self._steps_sent),
            policy=self._policy,
        )

    def _ui_facts(self) -> list[str]:
        currency = self._input.currency
        facts = [f"Balance: {self._balance} {currency} of {self._amount} {currency}"]
        if self._credit > 0:
            facts.append(f"Credit: {self._credit} {currency}")
        if self._hold:
            facts.append("Dispatch hold: set on the client")
        return facts

    async def _on_cancel(self) -> None:
        """A cancelled invoice (e.g. voided) holds nothing any more."""
        if self._hold and workflow.patched(CANCEL_LIFTS_HOLD):
            reason = f"invoice {self._input.invoice_id} case cancelled"
            await self._lift_hold(reason)
            await self._tell_lifted(reason)

    def allowed_actions(self) -> list[str]:
        actions = super().allowed_actions()
        if self._case.status.is_terminal or self._finishing():
            return actions
        actions += ["payments", "write-off"]
        if self._dispute is None:
            actions.append("disputes")
            if self._promise is None:
                actions.append("promise-to-pay")
        elif self._resolved is None:
            actions.append("resolve-dispute")
        return actions

    def _finishing(self) -> bool:
        return super()._finishing() or self._settled()

    def _exact(self, field: str, amount: Decimal) -> Decimal:
        try:
            return exact(amount, self._input.minor_units)
        except MoneyError as err:
            raise InvalidRequest(field, f"{field}: {err} ({self._input.currency})") from None

    # --- updates -------------------------------------------------------------------------------

    @workflow.update
    async def record_payment(self, payment: Payment) -> CaseState:
        """Money received; the same reference again is recorded once."""
        if any(p.reference == payment.reference for p in self._payments):
            return self._ack()
        self._payments.append(payment)
        self._balance -= payment.amount
        if self._balance < 0:
            self._credit, self._balance = -self._balance, self._zero
        self._event(
            "payment",
            f"Payment of {payment.amount} {self._input.currency} ({payment.reference}); "
            f"balance {self._balance}",
            actor=payment.by,
            amount=str(payment.amount),
            balance=str(self._balance),
            reference=payment.reference,
        )
        self._refresh_details()
        await self._sync()
        return self._ack()

    @record_payment.validator
    def _validate_record_payment(self, payment: Payment) -> None:
        if any(p.reference == payment.reference for p in self._payments):
            return  # a repeat: answered with the case as it is
        self._require("payments")
        self._exact("amount", payment.amount)

    @workflow.update
    async def open_dispute(self, dispute: Dispute) -> CaseState:
        self._dispute = dispute
        self._event("dispute", f"Disputed: {dispute.reason}", actor=dispute.by)
        self._refresh_details()
        await self._set_status(CaseStatus.DISPUTED, "Disputed; the ladder is paused")
        seq = await self._flag_escalation(f"Invoice disputed: {dispute.reason}", actor=dispute.by)
        self._spawn(self._notify_escalation(dispute.reason, key=f"dispute-{seq}"))
        return self._ack()

    @open_dispute.validator
    def _validate_open_dispute(self, dispute: Dispute) -> None:
        self._require("disputes")
        if dispute.disputed_amount is not None:
            self._exact("disputed_amount", dispute.disputed_amount)

    @workflow.update
    async def resolve_dispute(self, resolution: DisputeResolution) -> CaseState:
        self._resolved = resolution
        self._event("dispute_resolved", f"Dispute {resolution.outcome.value}", actor=resolution.by)
        return self._ack()

    @resolve_dispute.validator
    def _validate_resolve_dispute(self, resolution: DisputeResolution) -> None:
        self._require("resolve-dispute")
        if resolution.adjusted_amount is not None:
            self._exact("adjusted_amount", resolution.adjusted_amount)

    @workflow.update
    async def promise_to_pay(self, promise: Promise) -> CaseState:
        self._promise = promise
        self._event(
            "promise",
            f"Promised {promise.amount} {self._input.currency} by "
            f"{promise.promised_on.isoformat()}",
            actor=promise.by,
        )
        self._refresh_details()
        await self._set_status(
            CaseStatus.PAYMENT_PROMISED,
            "Payment promised; the ladder is paused",
            deadline_at=self._promise_deadline(promise),
        )
        return self._ack()

    @promise_to_pay.validator
    def _validate_promise_to_pay(self, promise: Promise) -> None:
        self._require("promise-to-pay")
        self._exact("amount", promise.amount)
        if promise.promised_on < workflow.now().date():
            raise InvalidRequest("promised_on", "promised_on must be today or later")

    @workflow.update
    async def write_off(self, request: WriteOff) -> CaseState:
        self._write_off = request
        return self._ack()

    @write_off.validator
    def _validate_write_off(self, request: WriteOff) -> None:
        self._require("write-off")

    @workflow.update
    async def release_hold(self, release: HoldRelease) -> CaseState:
        """An admin lifts the hold this case set; the ladder goes on for the balance."""
        reason = f"released by {release.by}: {release.reason}"
        await self._lift_hold(reason, actor=release.by)
        await self._sync()
        self._spawn(self._tell_lifted(reason))
        return self._ack()

    @release_hold.validator
    def _validate_release_hold(self, release: HoldRelease) -> None:
        if self._case.status.is_terminal:
            raise ActionNotAllowed("the case is closed")
        if not self._hold:
            raise ActionNotAllowed("this case holds no dispatches")
