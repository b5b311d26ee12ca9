"""The invoicing run: one client, one period, at most one invoice.

Ops start it with a period (`invoicing-run-{client_id}-{start}-{end}`); the client's schedule
starts it with its billing cycle (`invoicing-run-{client_id}-{nominal time}`), and the period is
the cycle before the schedule's nominal time (`TemporalScheduledStartTime`), from the day after
the client's last invoice. The run prices the period and records the invoice under the
client's next number (or finds the invoice the period already has), renders its PDF and the
CSV of every stop and stores both, emails both to the client's billing contact, and opens the
unpaid-invoice case `unpaid-invoice-{number}` as a child that outlives the run (the invoice
PDF on it, the client's dunning policy snapshotted). Every step is idempotent, so a second run
for the same period answers with the first invoice and completes whatever the first left
undone, sending nothing twice.

A period without stops makes no invoice, and the result says so. A period that cannot be
priced (no agreement in force, mixed currencies, an unpriced zone), overlaps another invoice
or belongs to an unknown client fails the run with a non-retryable ApplicationError of a
stable type (`schemas.invoicing.RUN_FAILURES`); a scheduled run tells the client's account
manager first (the schedule then pauses itself: `pause_on_failure`). An invoice email that
cannot be sent does not stop the run: the case opens escalated to the account manager.

No I/O here: everything that touches the world is an activity.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.errors import PERMANENT_MESSAGE_FAILURES
    from activities.invoicing import InvoicingActivities
    from activities.messaging import MessagingActivities
    from core.temporal import CASE_STATUS, CASE_TYPE, CLIENT_ID, ESCALATED, SCHEDULED_START_TIME
    from schemas.activities import MessageRequest, Recipient
    from schemas.case_types import UNPAID_INVOICE
    from schemas.enums import CaseStatus, ContactKind
    from schemas.invoicing import (
        NOT_SCHEDULED,
        RUN_FAILURES,
        InvoiceCaseRequest,
        InvoiceDocuments,
        InvoiceDocumentsRequest,
        InvoiceFacts,
        InvoicingRunInput,
        InvoicingRunResult,
        IssueInvoiceRequest,
        IssueInvoiceResult,
        ScheduleSyncRequest,
    )
    from schemas.ui_text import case_details, case_summary

from workflows.case import MESSAGE_OPTIONS

# Database work (pricing a month of stops, rendering its CSV) retries until the database is
# back; the run's own failures (RUN_FAILURES) are permanent and never retried.
WORK_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "heartbeat_timeout": timedelta(seconds=15),  # the activities heartbeat: a lost one retries
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(minutes=1), non_retryable_error_types=list(RUN_FAILURES)
    ),
}
# Keeping the schedule in step is a courtesy: the worker syncs every schedule when it starts.
SYNC_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_attempts=3),
}

INVOICE_TEMPLATE = "invoicing/invoice_issued"
FAILED_TEMPLATE = "invoicing/run_failed"


@workflow.defn
class InvoicingRunWorkflow:
    """One run per client and period (scheduled: per nominal time)."""

    @workflow.run
    async def run(self, input: InvoicingRunInput) -> InvoicingRunResult:
        run_id = workflow.info().workflow_id
        workflow.set_current_details(f"Invoicing {input.client_id}: pricing the period")
        try:
            issued = await workflow.execute_activity_method(
                InvoicingActivities.issue_invoice,
                IssueInvoiceRequest(
                    client_id=input.client_id,
                    period_start=input.period_start,
                    period_end=input.period_end,
                    cycle=input.cycle,
                    as_of=self._as_of(input),
                    continue_from_last=input.scheduled,
                    run_id=run_id,
                ),
                **WORK_OPTIONS,
            )
        except ActivityError as err:
            await self._fail(input, err)
        if issued.invoice is None:
            workflow.set_current_details(f"**No invoice**\n\n{issued.message}")
            await self._sync_schedule(input)
            return self._result(input, issued)

        invoice = issued.invoice
        workflow.set_current_details(f"Invoice {invoice.invoice_id}: rendering")
        try:
            documents = await workflow.execute_activity_method(
                InvoicingActivities.render_invoice_documents,
                InvoiceDocumentsRequest(invoice_id=invoice.invoice_id),
                **WORK_OPTIONS,
            )
        except ActivityError as err:
            await self._fail(input, err)
        email_problem = await self._email(invoice, documents)
        case_id = await self._open_case(input, invoice, documents, email_problem)
        await self._sync_schedule(input)
        lines = [
            f"**Invoice {invoice.invoice_id}** ({issued.outcome.value})",
            f"Total: {invoice.total} {invoice.currency}, due {invoice.due_on.isoformat()}",
            f"Emailed: {'yes' if email_problem is None else 'no, ' + email_problem}",
        ]
        if case_id:
            lines.append(f"Case: {case_id}")
        workflow.set_current_details("\n\n".join(lines))
        return self._result(
            input,
            issued,
            case_id=case_id,
            emailed=email_problem is None,
            email_problem=email_problem,
        )

    def _as_of(self, input: InvoicingRunInput) -> datetime:
        """The run's moment: the schedule's nominal time (a late start bills the same period
        and dates the invoice the same day), or now for a run ops started."""
        if not input.scheduled:
            return workflow.now()
        nominal = workflow.info().typed_search_attributes.get(SCHEDULED_START_TIME)
        if nominal is None:
            raise ApplicationError(
                "a run without a period must be started by the client's schedule (no "
                "TemporalScheduledStartTime)",
                type=NOT_SCHEDULED,
                non_retryable=True,
            )
        return nominal

    async def _email(self, invoice: InvoiceFacts, documents: InvoiceDocuments) -> str | None:
        """Both documents to the billing contact, once (the key is the invoice's). Returns
        why it could not be sent, or None."""
        request = MessageRequest(
            key=invoice.message_key,
            case_id=invoice.case_id,
            template=INVOICE_TEMPLATE,
            to=Recipient(
                role="client_contact", client_id=invoice.client_id, contact_kind=ContactKind.BILLING
            ),
            context={
                "subject": f"Invoice {invoice.invoice_id}",
                "invoice_id": invoice.invoice_id,
                "client_id": invoice.client_id,
                "client_name": invoice.client_name,
                "currency": invoice.currency,
                "amount": str(invoice.total),
                "subtotal": str(invoice.subtotal),
                "tax": str(invoice.tax),
                "issued_on": invoice.issued_on.isoformat(),
                "due_on": invoice.due_on.isoformat(),
                "period_start": invoice.period_start.isoformat(),
                "period_end": invoice.period_end.isoformat(),
                "payment_terms_days": invoice.payment_terms_days,
                "stop_count": invoice.stop_count,
            },
            attachments=[documents.pdf, documents.csv],
        )
        workflow.set_current_details(f"Invoice {invoice.invoice_id}: emailing")
        try:
            await workflow.execute_activity_method(
                MessagingActivities.send_message, request, **MESSAGE_OPTIONS
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type in PERMANENT_MESSAGE_FAILURES:
                return f"{cause.type}: {cause.message}"
            return "retries exhausted"
        return None

    async def _open_case(
        self,
        input: InvoicingRunInput,
        invoice: InvoiceFacts,
        documents: InvoiceDocuments,
        email_problem: str | None,
    ) -> str | None:
        """The unpaid-invoice case, as a child that outlives the run; the one the invoice
        already has when a run repeats. None for an invoice with nothing to pay."""
        if invoice.total <= 0:
            return None
        try:
            case_input = await workflow.execute_activity_method(
                InvoicingActivities.unpaid_invoice_opening,
                InvoiceCaseRequest(
                    invoice_id=invoice.invoice_id,
                    invoice_pdf=documents.pdf,
                    delivery_problem=email_problem,
                ),
                **WORK_OPTIONS,
            )
        except ActivityError as err:
            await self._fail(input, err)
        # A repeated run: the invoice's case is open (or was) already.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                UNPAID_INVOICE.workflow_type,
                case_input,
                id=invoice.case_id,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,  # one case per invoice
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=case_summary(
                    UNPAID_INVOICE.case_type, invoice.invoice_id, invoice.client_id
                ),
                static_details=case_details(
                    UNPAID_INVOICE.case_type,
                    subject=f"Invoice {invoice.invoice_id} due {case_input.due_on.isoformat()} "
                    f"(opened by {workflow.info().workflow_id})",
                    client_id=invoice.client_id,
                    depot_id=None,
                    zone_name=case_input.timezone,
                    policy=case_input.policy,
                ),
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(CASE_TYPE, UNPAID_INVOICE.case_type.value),
                        SearchAttributePair(CASE_STATUS, CaseStatus.OPEN.value),
                        SearchAttributePair(ESCALATED, False),
                        SearchAttributePair(CLIENT_ID, invoice.client_id),
                    ]
                ),
            )
        return invoice.case_id

    async def _sync_schedule(self, input: InvoicingRunInput) -> None:
        """A scheduled run leaves the schedule on the cycle of the agreement now in force."""
        if not input.scheduled:
            return
        try:
            await workflow.execute_activity_method(
                InvoicingActivities.sync_invoicing_schedule,
                ScheduleSyncRequest(client_id=input.client_id),
                **SYNC_OPTIONS,
            )
        except ActivityError as err:
            workflow.logger.warning("schedule of %s not synced: %s", input.client_id, err.cause)

    async def _fail(self, input: InvoicingRunInput, err: ActivityError) -> NoReturn:
        """The run's own failures fail it with their type (a scheduled run first tells the
        account manager: nobody is waiting on its answer); anything else propagates."""
        cause = err.cause
        if not (isinstance(cause, ApplicationError) and cause.type in RUN_FAILURES):
            raise err
        workflow.set_current_details(f"**Failed** ({cause.type})\n\n{cause.message}")
        if input.scheduled:
            notice = MessageRequest(
                key=f"{workflow.info().workflow_id}/failed",
                case_id=workflow.info().workflow_id,
                template=FAILED_TEMPLATE,
                to=Recipient(
                    role="client_contact",
                    client_id=input.client_id,
                    contact_kind=ContactKind.ACCOUNT_MANAGER,
                ),
                context={
                    "subject": f"Invoicing run for {input.client_id} failed",
                    "client_id": input.client_id,
                    "failure_type": cause.type,
                    "reason": cause.message,
                },
            )
            try:
                await workflow.execute_activity_method(
                    MessagingActivities.send_message, notice, **MESSAGE_OPTIONS
                )
            except ActivityError as notice_err:
                workflow.logger.warning("failure notice not sent: %s", notice_err.cause)
        raise ApplicationError(
            cause.message, *cause.details, type=cause.type, non_retryable=True
        ) from None

    @staticmethod
    def _result(
        input: InvoicingRunInput,
        issued: IssueInvoiceResult,
        *,
        case_id: str | None = None,
        emailed: bool = False,
        email_problem: str | None = None,
    ) -> InvoicingRunResult:
        invoice = issued.invoice
        return InvoicingRunResult(
            client_id=input.client_id,
            outcome=issued.outcome,
            period_start=issued.period_start,
            period_end=issued.period_end,
            message=issued.message,
            invoice_id=invoice.invoice_id if invoice else None,
            total=invoice.total if invoice else None,
            currency=invoice.currency if invoice else None,
            case_id=case_id,
            emailed=emailed,
            email_problem=email_problem,
        )
