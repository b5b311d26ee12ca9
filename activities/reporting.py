"""The report run's activities: the period a schedule's nominal time gives; preparing a report
(its figures computed by `schemas.report_figures.build_report` from what
`core.report_inputs` reads, its charts, PDF and CSV rendered and stored, the report recorded
once, and who it goes to); and recording what was sent.

Idempotent by the business key: the report of a client, kind and period is recorded once
(`client_reports`, the first recorded wins), so a retried activity, a repeated run or ops
triggering a period the schedule already sent finds it and sends the same email, whose
message keys the outbox has already seen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.rendering import human_datetime
from activities.report_documents import (
    render_charts,
    render_report_pdf,
    render_rows_csv,
)
from activities.sql import insert_ignore
from core.db import SessionFactory
from core.documents import DocumentStore
from core.report_inputs import load_report_inputs
from core.uploads import CSV, PDF, PNG
from schemas.documents import DocumentKind, DocumentRef
from schemas.enums import ContactKind
from schemas.report_figures import (
    ExceptionLine,
    Report,
    build_report,
    figure_table,
    span_needed,
    underlying_rows,
    window,
)
from schemas.reporting import (
    BAD_PERIOD,
    MARK_REPORT_SENT,
    PREPARE_REPORT,
    SCHEDULED_PERIOD,
    UNKNOWN_CLIENT,
    MarkSentRequest,
    PeriodError,
    PreparedReport,
    PrepareReportRequest,
    ReportKind,
    ScheduledPeriod,
    ScheduledPeriodRequest,
    period_days,
    period_is_over,
    report_id,
    reporting_of,
    scheduled_period,
)
from schemas.tables import Client, ClientContact, ClientReport

TEMPLATES = {ReportKind.DAILY: "reports/daily_summary", ReportKind.WEEKLY: "reports/weekly_report"}
LINES_PER_SECTION = 50
"""A daily section lists at most this many cases (the rest: "and N more", in the console)."""


def _permanent(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def _ref_json(ref: DocumentRef) -> dict[str, Any]:
    return ref.model_dump(mode="json")


def stored_ref(stored: dict[str, Any] | None) -> DocumentRef | None:
    return DocumentRef.model_validate(stored) if stored else None


async def report_recipients(session: AsyncSession, client: Client) -> tuple[list[uuid.UUID], bool]:
    """The reporting contacts a client's reports go to (those its settings list, or all of
    them; a listed contact no longer a reporting contact is skipped), ordered by name, and
    whether it has an account manager to copy."""
    contacts = (
        await session.exec(
            select(ClientContact)
            .where(
                col(ClientContact.client_id) == client.id,
                col(ClientContact.kind).in_([ContactKind.REPORTING, ContactKind.ACCOUNT_MANAGER]),
            )
            .order_by(col(ClientContact.name), col(ClientContact.id))
        )
    ).all()
    listed = set(reporting_of(client.reporting).contacts)
    recipients = [
        c.id for c in contacts if c.kind is ContactKind.REPORTING and (not listed or c.id in listed)
    ]
    return recipients, any(c.kind is ContactKind.ACCOUNT_MANAGER for c in contacts)


class ReportingActivities:
    """Built once in worker.py with the session factory, the document store, who the reports
    are from and the public address the console links point to."""

    def __init__(
        self,
        sessions: SessionFactory,
        documents: DocumentStore,
        *,
        issuer: str,
        public_base_url: str,
    ) -> None:
        self._sessions = sessions
        self._documents = documents
        self._issuer = issuer
        self._base_url = public_base_url.rstrip("/")

    @activity.defn(name=SCHEDULED_PERIOD)
    async def scheduled_report_period(self, request: ScheduledPeriodRequest) -> ScheduledPeriod:
        async with self._sessions() as session:
            client = await session.get(Client, request.client_id)
        if client is None:
            raise _permanent(f"unknown client '{request.client_id}'", UNKNOWN_CLIENT)
        return ScheduledPeriod(
            period=scheduled_period(request.kind, request.nominal, client.timezone),
            enabled=reporting_of(client.reporting).enabled(request.kind),
        )

    @activity.defn(name=PREPARE_REPORT)
    async def prepare_report(self, request: PrepareReportRequest) -> PreparedReport:
        """The report of the client, kind and period: the one recorded, or computed, rendered,
        stored and recorded now; with who it goes to now (contacts change)."""
        async with heartbeating():
            return await self._prepare(request)

    async def _prepare(self, request: PrepareReportRequest) -> PreparedReport:
        key = report_id(request.kind, request.client_id, request.period)
        async with self._sessions() as session:
            client = await session.get(Client, request.client_id)
            if client is None:
                raise _permanent(f"unknown client '{request.client_id}'", UNKNOWN_CLIENT)
            try:
                period_days(request.kind, request.period)
            except PeriodError as err:
                raise _permanent(str(err), BAD_PERIOD) from None
            if not period_is_over(request.kind, request.period, request.as_of, client.timezone):
                raise _permanent(
                    f"{request.period} is not over yet in {client.timezone}", BAD_PERIOD
                )
            row = await session.get(ClientReport, key)
            recipients, account_manager = await report_recipients(session, client)
            if row is None:
                inputs = await load_report_inputs(
                    session, client, *span_needed(request.kind, request.period)
                )
        if row is None:
            row = await self._record(client, request, key, inputs)
        report = Report.model_validate(row.figures)
        charts = {name: stored_ref(ref) for name, ref in row.charts.items()}
        attachments = [ref for ref in (stored_ref(row.pdf), stored_ref(row.csv)) if ref]
        return PreparedReport(
            report_id=key,
            client_id=client.id,
            kind=request.kind,
            period=request.period,
            sent_before=row.status == "sent",
            recipients=recipients,
            account_manager=account_manager,
            template=TEMPLATES[request.kind],
            context=self._context(client, report, row),
            attachments=attachments,
            inline_images={name: ref for name, ref in charts.items() if ref is not None},
        )

    async def _record(
        self, client: Client, request: PrepareReportRequest, key: str, inputs: Any
    ) -> ClientReport:
        """Compute, render, store, record; the first recorded wins a race."""
        report = await asyncio.to_thread(build_report, inputs, request.kind, request.period)
        charts: dict[str, Any] = {}
        pdf_ref = csv_ref = None
        if request.kind is ReportKind.WEEKLY:
            rows = underlying_rows(inputs, window(request.kind, request.period))
            pngs = await asyncio.to_thread(render_charts, report)
            pdf = await asyncio.to_thread(
                render_report_pdf,
                report,
                pngs,
                client_name=client.name,
                issuer=self._issuer,
                as_of=request.as_of,
            )
            for name, png in pngs.items():
                ref = await asyncio.to_thread(
                    self._documents.put_generated,
                    png,
                    kind=DocumentKind.REPORT_CHART,
                    content_type=PNG,
                    name=f"{name}.png",
                )
                charts[name] = _ref_json(ref)
            pdf_ref = await asyncio.to_thread(
                self._documents.put_generated,
                pdf,
                kind=DocumentKind.REPORT_PDF,
                content_type=PDF,
                name=f"{key}.pdf",
            )
            csv_ref = await asyncio.to_thread(
                self._documents.put_generated,
                render_rows_csv(rows),
                kind=DocumentKind.REPORT_ROWS,
                content_type=CSV,
                name=f"{key}.csv",
            )
        async with self._sessions() as session:
            await session.exec(
                insert_ignore(session, ClientReport, "id").values(
                    id=key,
                    client_id=client.id,
                    kind=request.kind.value,
                    period=request.period,
                    timezone=client.timezone,
                    as_of=request.as_of,
                    run_id=request.run_id,
                    figures=report.model_dump(mode="json"),
                    charts=charts,
                    pdf=_ref_json(pdf_ref) if pdf_ref else None,
                    csv=_ref_json(csv_ref) if csv_ref else None,
                    status="prepared",
                    recipients=0,
                    message_keys=[],
                    problems=[],
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
            await session.commit()
            row = await session.get(ClientReport, key, populate_existing=True)
        assert row is not None  # inserted above, and reports are never deleted
        activity.logger.info("report %s recorded", key)
        return row

    def _context(self, client: Client, report: Report, row: ClientReport) -> dict[str, Any]:
        zone = ZoneInfo(client.timezone)
        f = report.figures
        kind = ReportKind(row.kind)
        what = (
            "Daily exception summary" if kind is ReportKind.DAILY else "Weekly performance report"
        )
        context: dict[str, Any] = {
            "subject": f"{what} for {client.name}: {report.period}",
            "title": what,
            "client_id": client.id,
            "client_name": client.name,
            "kind": kind.value,
            "period": report.period,
            "start": f.start.isoformat(),
            "end": f.end.isoformat(),
            "timezone": client.timezone,
            "console_url": f"{self._base_url}/console/reports/{client.id}",
            "headline": {
                "stops_attempted": f.stops_attempted,
                "first_attempt_success": f.first_attempt_success.text,
                "on_time": f.on_time.text,
                "failed_attempts": f.failed_attempts,
            },
            "figures": [line.model_dump(mode="json") for line in figure_table(report)],
            "trend_periods": [t.period for t in report.trend],
            "charts": [
                {"cid": name, "alt": alt}
                for name, alt in (
                    ("trend", "First-attempt success and on-time rate over 12 weeks"),
                    ("failed-reasons", "Failed attempts by reason"),
                    ("claims", "Claims by outcome"),
                )
                if name in row.charts
            ],
        }
        if report.exceptions is not None:
            sections = [
                ("Failed deliveries opened", report.exceptions.failed_deliveries_opened),
                ("Failed deliveries resolved", report.exceptions.failed_deliveries_resolved),
                ("Returns to sender", report.exceptions.returns_to_sender),
                ("Claims opened", report.exceptions.claims_opened),
                ("Escalations still open", report.exceptions.escalations_open),
            ]
            context["sections"] = [
                {
                    "title": title,
                    "count": len(lines),
                    "lines": [self._line(line, zone) for line in lines[:LINES_PER_SECTION]],
                    "more": max(0, len(lines) - LINES_PER_SECTION),
                }
                for title, lines in sections
            ]
            context["quiet"] = report.exceptions.empty
        return context

    def _line(self, line: ExceptionLine, zone: ZoneInfo) -> dict[str, Any]:
        return {
            "case_id": line.case_id,
            "case_type": line.case_type.value.replace("_", " "),
            "business_key": line.business_key,
            "status": line.status.value.replace("_", " "),
            "resolution": line.resolution.value.replace("_", " ") if line.resolution else None,
            "at": human_datetime(line.at.astimezone(zone)),
            "deadline": human_datetime(line.deadline_at.astimezone(zone))
            if line.deadline_at
            else None,
            "url": f"{self._base_url}{line.console_path}",
        }

    @activity.defn(name=MARK_REPORT_SENT)
    async def mark_report_sent(self, request: MarkSentRequest) -> None:
        async with self._sessions() as session:
            await session.exec(
                update(ClientReport)
                .where(col(ClientReport.id) == request.report_id)
                .values(
                    status=request.outcome.value,
                    recipients=len(request.message_keys),
                    message_keys=request.message_keys,
                    problems=request.problems,
                    sent_at=dt.datetime.now(dt.UTC),
                )
            )
            await session.commit()
