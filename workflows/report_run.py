"""The report run: one client, one kind (daily or weekly), one period, sent at most once.

Ops start it for a period (`POST /reports/runs`) under the business key
`report-{kind}-{client_id}-{period}`. A client's schedule starts it without a period
(`report-scheduled-{kind}-{client_id}-{nominal time}`): that run derives the period from the
schedule's nominal time (`TemporalScheduledStartTime`) in the client's time zone and runs the
business-key run as its child, so both ways end in the same workflow id and the same report.

The run prepares the report (one activity: figures, charts, PDF and CSV, recorded once), emails
it to each of the client's reporting contacts and a copy to the account manager, each under a
deterministic message key (`{report id}/to/{contact id}`, `{report id}/copy/account-manager`):
a retried activity, a repeated run or a second trigger sends nothing twice. A client without a
reporting contact gets nothing; the run says so and the account manager is told, once per
client. Activities are called by name: this module imports no activity code (nor matplotlib,
fpdf2 or the email backends).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from core.temporal import SCHEDULED_START_TIME
    from schemas.activities import InlineImage, MessageRequest, MessageResult, Recipient
    from schemas.enums import ContactKind
    from schemas.reporting import (
        MARK_REPORT_SENT,
        NOT_SCHEDULED,
        PREPARE_REPORT,
        RUN_FAILURES,
        SCHEDULED_PERIOD,
        SEND_MESSAGE,
        MarkSentRequest,
        PreparedReport,
        PrepareReportRequest,
        ReportOutcome,
        ReportRunInput,
        ReportRunResult,
        ScheduledPeriod,
        ScheduledPeriodRequest,
        account_manager_key,
        no_contact_key,
        recipient_key,
        report_id,
    )

# Reading a quarter of stops and rendering charts: the activity heartbeats, so one lost with
# its worker is retried within seconds; the run's own failures are permanent.
WORK_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "heartbeat_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(minutes=1), non_retryable_error_types=list(RUN_FAILURES)
    ),
}
RECORD_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(minutes=1), non_retryable_error_types=list(RUN_FAILURES)
    ),
}
# As every case's email (workflows/case.py): SendGrid's 429/5xx retried with backoff for up
# to 12 hours, permanent refusals at once; the send heartbeats.
MESSAGE_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=1),
    "heartbeat_timeout": timedelta(seconds=15),
    "schedule_to_close_timeout": timedelta(hours=12),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=10)
    ),
}
NO_CONTACT_TEMPLATE = "reports/no_reporting_contact"


@workflow.defn
class ReportRunWorkflow:
    """One run per client, kind and period (a schedule's: one per nominal time)."""

    @workflow.run
    async def run(self, input: ReportRunInput) -> ReportRunResult:
        if input.period is None:
            return await self._scheduled(input)
        return await self._report(input, input.period)

    async def _scheduled(self, input: ReportRunInput) -> ReportRunResult:
        """The period from the nominal time; the business-key run does the work."""
        nominal = workflow.info().typed_search_attributes.get(SCHEDULED_START_TIME)
        if nominal is None:
            raise ApplicationError(
                "a run without a period must be started by the client's schedule (no "
                "TemporalScheduledStartTime)",
                type=NOT_SCHEDULED,
                non_retryable=True,
            )
        scheduled: ScheduledPeriod = await workflow.execute_activity(
            SCHEDULED_PERIOD,
            ScheduledPeriodRequest(client_id=input.client_id, kind=input.kind, nominal=nominal),
            result_type=ScheduledPeriod,
            **RECORD_OPTIONS,
        )
        key = report_id(input.kind, input.client_id, scheduled.period)
        if not scheduled.enabled:
            return ReportRunResult(
                client_id=input.client_id,
                kind=input.kind,
                period=scheduled.period,
                report_id=key,
                outcome=ReportOutcome.NOT_ENABLED,
                message=f"{input.client_id} no longer gets the {input.kind.value} report",
            )
        workflow.set_current_details(f"Reporting {scheduled.period}: run {key}")
        try:
            return await workflow.execute_child_workflow(
                ReportRunWorkflow.run,
                ReportRunInput(
                    client_id=input.client_id,
                    kind=input.kind,
                    period=scheduled.period,
                    as_of=nominal,
                    requested_by=f"schedule:{workflow.info().workflow_id}",
                ),
                id=key,
                static_summary=f"{input.kind.value.capitalize()} report · client "
                f"{input.client_id} · {scheduled.period}",
                # A finished run for the period (ops triggered it) may run again: it finds the
                # report sent and sends nothing.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return ReportRunResult(
                client_id=input.client_id,
                kind=input.kind,
                period=scheduled.period,
                report_id=key,
                outcome=ReportOutcome.ALREADY_SENT,
                message=f"{key} was already running (started by ops): it sends the report",
            )
        except ChildWorkflowError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
            raise

    async def _report(self, input: ReportRunInput, period: str) -> ReportRunResult:
        key = report_id(input.kind, input.client_id, period)
        workflow.set_current_details(f"Report {key}: computing")
        try:
            prepared: PreparedReport = await workflow.execute_activity(
                PREPARE_REPORT,
                PrepareReportRequest(
                    client_id=input.client_id,
                    kind=input.kind,
                    period=period,
                    as_of=input.as_of or workflow.now(),
                    run_id=workflow.info().workflow_id,
                ),
                result_type=PreparedReport,
                **WORK_OPTIONS,
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type in RUN_FAILURES:
                workflow.set_current_details(f"**Failed** ({cause.type})\n\n{cause.message}")
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
            raise

        def result(outcome: ReportOutcome, message: str, **kw: Any) -> ReportRunResult:
            workflow.set_current_details(f"**{outcome.value}**\n\n{message}")
            return ReportRunResult(
                client_id=input.client_id,
                kind=input.kind,
                period=period,
                report_id=key,
                outcome=outcome,
                message=message,
                **kw,
            )

        if prepared.sent_before:
            return result(ReportOutcome.ALREADY_SENT, f"{key} was sent before: nothing sent")
        if not prepared.recipients:
            problems = await self._no_recipients(input, prepared)
            await self._mark(key, ReportOutcome.NO_RECIPIENTS, [], problems)
            return result(
                ReportOutcome.NO_RECIPIENTS,
                f"{input.client_id} has no reporting contact: nothing sent"
                + ("" if prepared.account_manager else " (and no account manager to tell)"),
                problems=problems,
            )

        requests = [
            self._message(
                prepared,
                recipient_key(key, contact_id),
                Recipient(
                    role="client_contact",
                    client_id=input.client_id,
                    contact_kind=ContactKind.REPORTING,
                    contact_id=contact_id,
                ),
                copy=False,
            )
            for contact_id in prepared.recipients
        ]
        if prepared.account_manager:
            requests.append(
                self._message(
                    prepared,
                    account_manager_key(key),
                    Recipient(
                        role="client_contact",
                        client_id=input.client_id,
                        contact_kind=ContactKind.ACCOUNT_MANAGER,
                    ),
                    copy=True,
                )
            )
        workflow.set_current_details(f"Report {key}: emailing {len(requests)}")
        outcomes = await asyncio.gather(*(self._send(request) for request in requests))
        problems = [problem for problem in outcomes if problem]
        sent = [r.key for r, problem in zip(requests, outcomes, strict=True) if not problem]
        outcome = ReportOutcome.SEND_FAILED if problems else ReportOutcome.SENT
        await self._mark(key, outcome, sent, problems)
        return result(
            outcome,
            f"{key}: emailed to {len(prepared.recipients)} reporting contact(s)"
            + (", the account manager copied" if prepared.account_manager else "")
            + (f"; {len(problems)} not sent" if problems else ""),
            recipients=len(prepared.recipients),
            message_keys=sent,
            problems=problems,
        )

    @staticmethod
    def _message(
        prepared: PreparedReport, key: str, to: Recipient, *, copy: bool
    ) -> MessageRequest:
        return MessageRequest(
            key=key,
            case_id=prepared.report_id,
            template=prepared.template,
            to=to,
            context={**prepared.context, "copy": copy},
            attachments=list(prepared.attachments),
            inline_images=[
                InlineImage(content_id=name, document=ref)
                for name, ref in prepared.inline_images.items()
            ],
        )

    async def _send(self, request: MessageRequest) -> str | None:
        """Why it was not sent (None: sent, now or before)."""
        try:
            await workflow.execute_activity(
                SEND_MESSAGE, request, result_type=MessageResult, **MESSAGE_OPTIONS
            )
        except ActivityError as err:
            cause = err.cause
            reason = (
                f"{cause.type}: {cause.message}"
                if isinstance(cause, ApplicationError)
                else "retries exhausted"
            )
            return f"{request.key}: {reason}"
        return None

    async def _no_recipients(self, input: ReportRunInput, prepared: PreparedReport) -> list[str]:
        """Tell the account manager, once per client (the key has no period)."""
        if not prepared.account_manager:
            return [f"{input.client_id} has neither a reporting contact nor an account manager"]
        notice = MessageRequest(
            key=no_contact_key(input.client_id),
            case_id=prepared.report_id,
            template=NO_CONTACT_TEMPLATE,
            to=Recipient(
                role="client_contact",
                client_id=input.client_id,
                contact_kind=ContactKind.ACCOUNT_MANAGER,
            ),
            context={
                "subject": f"No reporting contact for {prepared.context.get('client_name')}",
                "client_id": input.client_id,
                "client_name": prepared.context.get("client_name"),
                "kind": input.kind.value,
                "period": prepared.period,
            },
        )
        problem = await self._send(notice)
        return [problem] if problem else []

    async def _mark(
        self, key: str, outcome: ReportOutcome, sent: list[str], problems: list[str]
    ) -> None:
        await workflow.execute_activity(
            MARK_REPORT_SENT,
            MarkSentRequest(report_id=key, outcome=outcome, message_keys=sent, problems=problems),
            **RECORD_OPTIONS,
        )
