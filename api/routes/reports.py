"""Client reporting over HTTP: runs (`POST /reports/runs`, `GET /reports/runs/{run_id}`), a
client's figures for a period (`GET /reports/{client_id}`), the charts of its weekly report
(`GET /reports/{client_id}/charts/{name}.png`), and its reporting state and schedules
(`GET /clients/{id}/reports`, `POST .../reports/pause`, `POST .../reports/resume`).

A run is a Temporal workflow (`ReportRunWorkflow`, started by name) under the business key
`report-{kind}-{client_id}-{period}`: a run going for that period is joined, a finished one may
run again and sends nothing twice. The figures are computed by the same function the emails
use (`schemas.report_figures.build_report`) from the same inputs (`core.report_inputs`).
The charts are the ones the run rendered and stored with the report (they are what the email
showed); this process never draws."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlmodel import col, select
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import (
    Now,
    OpsKey,
    SessionDep,
    SettingsDep,
    TemporalDep,
    TimeoutsDep,
    ViewerKey,
    workflow_status,
)
from api.errors import Problem, invalid, problem_from_temporal, temporal_call
from api.report_models import (
    ClientReportsOut,
    ReportOut,
    ReportRunIn,
    ReportRunOut,
    ScheduleNoteIn,
    ScheduleOut,
    SentReport,
    reporting_out,
)
from api.routes.documents import content_disposition
from api.runs import start_and_wait
from core.report_inputs import load_report_inputs
from core.report_schedules import sync_client_reports
from core.settings import Settings
from core.temporal import CLIENT_ID
from schemas.report_figures import build_report, figure_table, span_needed
from schemas.reporting import (
    BAD_PERIOD,
    RUN_WORKFLOW,
    UNKNOWN_CLIENT,
    PeriodError,
    ReportKind,
    ReportOutcome,
    ReportRunInput,
    ReportRunResult,
    period_days,
    period_is_over,
    period_label,
    report_id,
    reporting_of,
    schedule_id,
)
from schemas.tables import Client as ClientRow
from schemas.tables import ClientContact, ClientReport

log = logging.getLogger("casedesk.api")

router = APIRouter(tags=["reports"])

CHART_NAMES = ("trend", "failed-reasons", "claims")
RUN_PREFIX = "report-"


async def _client(session: SessionDep, client_id: str) -> ClientRow:
    client = await session.get(ClientRow, client_id)
    if client is None:
        raise Problem(404, f"unknown client '{client_id}'")
    return client


def _checked_period(kind: ReportKind, period: str, field: str = "period") -> None:
    try:
        period_days(kind, period)
    except PeriodError as err:
        raise invalid(field, str(err)) from None


def latest_complete(kind: ReportKind, now: dt.datetime, timezone: str) -> str:
    """Yesterday, or last week, in the client's time zone."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    days = 1 if kind is ReportKind.DAILY else 7
    return period_label(kind, today - dt.timedelta(days=days))


def _chart_url(client_id: str, name: str, period: str) -> str:
    return f"/reports/{client_id}/charts/{name}.png?kind=weekly&period={period}"


def sent_report(row: ClientReport) -> SentReport:
    return SentReport(
        report_id=row.id,
        status=row.status,
        as_of=row.as_of,
        created_at=row.created_at,
        sent_at=row.sent_at,
        recipients=row.recipients,
        message_keys=list(row.message_keys),
        problems=list(row.problems),
        charts={name: _chart_url(row.client_id, name, row.period) for name in row.charts},
        pdf_url=f"/reports/{row.client_id}/files/pdf?kind={row.kind}&period={row.period}"
        if row.pdf
        else None,
        csv_url=f"/reports/{row.client_id}/files/csv?kind={row.kind}&period={row.period}"
        if row.csv
        else None,
    )


# --- runs ----------------------------------------------------------------------------------


def _run_out(
    settings: Settings,
    run_id: str,
    client_id: str,
    *,
    run_status: str,
    result: ReportRunResult | None = None,
    failure: ApplicationError | None = None,
) -> ReportRunOut:
    return ReportRunOut(
        run_id=run_id,
        status=run_status,
        client_id=client_id,
        kind=result.kind if result else None,
        period=result.period if result else None,
        outcome=result.outcome if result else None,
        message=result.message if result else (failure.message if failure else None),
        recipients=result.recipients if result else None,
        message_keys=result.message_keys if result else [],
        problems=result.problems if result else [],
        failure_type=failure.type if failure else None,
        trace_url=settings.trace_url(run_id),
    )


def _cause(err: WorkflowFailureError) -> ApplicationError | None:
    cause = err.cause
    return cause if isinstance(cause, ApplicationError) else None


@router.post(
    "/reports/runs",
    status_code=status.HTTP_201_CREATED,
    summary="Run a client's daily or weekly report now (ops)",
    description="Runs `report-{kind}-{client_id}-{period}`: computes the figures, renders "
    "the charts, PDF and CSV (weekly), emails the report to the client's reporting contacts "
    "and a copy to its account manager. 201 when it was sent now; 200 when it had been sent "
    "before (`already_sent`: nothing is sent twice) or the client has no reporting contact "
    "(`no_recipients`: nothing sent); 202 with the run to poll when it takes longer than "
    "30 s. 422 naming the field for an unknown client, a malformed period (weekly: "
    "`2026-W48`; daily: `2026-11-25`) or one not over yet in the client's time zone.",
    responses={
        200: {"description": "Sent before, or nobody to send it to: nothing sent now."},
        202: {"description": "Still running: poll the Location."},
    },
)
async def start_report_run(
    body: ReportRunIn,
    key: OpsKey,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    timeouts: TimeoutsDep,
    now: Now,
) -> ReportRunOut:
    client = await session.get(ClientRow, body.client_id)
    if client is None:
        raise invalid("client_id", f"unknown client '{body.client_id}'")
    _checked_period(body.kind, body.period)
    if not period_is_over(body.kind, body.period, now, client.timezone):
        today = now.astimezone(ZoneInfo(client.timezone)).date()
        raise invalid(
            "period",
            f"{body.period} is not over yet: today is {today.isoformat()} in {client.timezone}",
        )
    run_id = report_id(body.kind, client.id, body.period)
    answer = await start_and_wait(
        temporal,
        workflow=RUN_WORKFLOW,
        arg=ReportRunInput(
            client_id=client.id, kind=body.kind, period=body.period, requested_by=f"ops:{key.name}"
        ),
        run_id=run_id,
        client_id=client.id,
        task_queue=settings.temporal_task_queue,
        result_type=ReportRunResult,
        wait=timeouts.run,
        summary=f"{body.kind.value.capitalize()} report · client {client.id} · {body.period}",
    )
    if answer.failure is not None:
        cause = _cause(answer.failure)
        if cause is not None and cause.type in (BAD_PERIOD, UNKNOWN_CLIENT):
            field = "period" if cause.type == BAD_PERIOD else "client_id"
            raise invalid(field, cause.message)
        raise Problem(
            500,
            f"the report run failed: {cause.message if cause else answer.failure}",
            extra={"run_id": run_id, "failure_type": cause.type if cause else None},
        )
    result = answer.result
    if result is None:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = f"/reports/runs/{run_id}"
        return _run_out(settings, run_id, client.id, run_status="running")
    if result.outcome is not ReportOutcome.SENT:
        response.status_code = status.HTTP_200_OK
    return _run_out(settings, run_id, client.id, run_status="completed", result=result)


@router.get(
    "/reports/runs/{run_id}",
    summary="A report run (ops' or a schedule's): running, its outcome, or its failure",
)
async def get_report_run(
    run_id: str, _: ViewerKey, settings: SettingsDep, temporal: TemporalDep
) -> ReportRunOut:
    if not run_id.startswith(RUN_PREFIX):
        raise Problem(404, f"unknown report run '{run_id}'")
    try:
        execution = await workflow_status(temporal, run_id)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise Problem(404, f"unknown report run '{run_id}'") from None
        raise (problem_from_temporal(err) or err) from None
    handle = temporal.get_workflow_handle(run_id, result_type=ReportRunResult)
    with temporal_call():
        described = await handle.describe()
    client_id = str(described.typed_search_attributes.get(CLIENT_ID) or "")
    name = execution.name.lower()
    if execution == WorkflowExecutionStatus.RUNNING:
        return _run_out(settings, run_id, client_id, run_status=name)
    try:
        with temporal_call():
            result = await handle.result(follow_runs=False)
    except WorkflowFailureError as err:
        return _run_out(settings, run_id, client_id, run_status=name, failure=_cause(err))
    return _run_out(settings, run_id, client_id, run_status=name, result=result)


# --- a report's figures, charts and files -------------------------------------------------------


@router.get(
    "/reports/{client_id}",
    summary="A client's report figures for a period, computed now",
    description="`kind` (`weekly`, default, or `daily`) and `period` (weekly: an ISO week, "
    "`2026-W48`; daily: a date; default: the last complete one in the client's time zone). "
    "Every figure with the previous period and the four-week trend, the 12-week series "
    "(weekly) or the day's exceptions (daily), computed by the same function as the emails; "
    "`sent` is what the report run recorded and emailed for the period, if it ran.",
)
async def get_report(
    client_id: str,
    session: SessionDep,
    _: ViewerKey,
    now: Now,
    kind: ReportKind = ReportKind.WEEKLY,
    period: Annotated[str | None, Query(max_length=16)] = None,
) -> ReportOut:
    client = await _client(session, client_id)
    label = period or latest_complete(kind, now, client.timezone)
    _checked_period(kind, label)
    inputs = await load_report_inputs(session, client, *span_needed(kind, label))
    report = await run_in_threadpool(build_report, inputs, kind, label)
    row = await session.get(ClientReport, report_id(kind, client.id, label))
    return ReportOut(
        report=report,
        table=figure_table(report),
        complete=period_is_over(kind, label, now, client.timezone),
        sent=sent_report(row) if row else None,
    )


async def _stored_report(
    session: SessionDep, client_id: str, kind: ReportKind, period: str | None
) -> ClientReport:
    await _client(session, client_id)
    if period is not None:
        _checked_period(kind, period)
        row = await session.get(ClientReport, report_id(kind, client_id, period))
        if row is None:
            raise Problem(
                404,
                f"no {kind.value} report of '{client_id}' has been run for {period} "
                "(POST /reports/runs runs one)",
                slug="no-report",
            )
        return row
    latest = (
        await session.exec(
            select(ClientReport)
            .where(col(ClientReport.client_id) == client_id, col(ClientReport.kind) == kind.value)
            .order_by(col(ClientReport.period).desc())
            .limit(1)
        )
    ).first()
    if latest is None:
        raise Problem(
            404, f"no {kind.value} report of '{client_id}' has been run", slug="no-report"
        )
    return latest


async def _document(
    request: Request, stored: dict[str, Any], media_type: str, filename: str | None
) -> Response:
    store = request.app.state.documents
    try:
        data = await run_in_threadpool(store.get, stored["id"])
    except LookupError:
        log.error("report document %s is not in the store", stored["id"])
        raise Problem(404, "the document is no longer stored") from None
    if hashlib.sha256(data).hexdigest() != stored["sha256"]:
        log.error("report document %s does not match its checksum", stored["id"])
        raise Problem(500, "the stored document does not match its checksum")
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=300",
        "ETag": f'"{stored["sha256"]}"',
    }
    if filename:
        headers["Content-Disposition"] = content_disposition(filename)
    return Response(content=data, media_type=media_type, headers=headers)


@router.get(
    "/reports/{client_id}/charts/{name}.png",
    summary="A chart of the client's weekly report, as emailed",
    description="`trend` (first-attempt success and on-time rate over 12 weeks), "
    "`failed-reasons` or `claims`; of the report for `period` (an ISO week), or of the "
    "latest weekly report run. The run renders and stores the charts with its report (they "
    "are what the email showed); 404 when no report has been run for the period.",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def report_chart(
    client_id: str,
    name: str,
    request: Request,
    session: SessionDep,
    _: ViewerKey,
    kind: ReportKind = ReportKind.WEEKLY,
    period: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    if name not in CHART_NAMES:
        raise Problem(404, f"no chart '{name}': the charts are {', '.join(CHART_NAMES)}")
    if kind is not ReportKind.WEEKLY:
        raise invalid("kind", "only the weekly report has charts")
    row = await _stored_report(session, client_id, kind, period)
    stored = row.charts.get(name)
    if not stored:
        raise Problem(404, f"report {row.id} has no chart '{name}'")
    return await _document(request, stored, "image/png", None)


@router.get(
    "/reports/{client_id}/files/{file}",
    summary="The PDF copy or the CSV of a client's weekly report, as emailed",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "text/csv": {}}}},
)
async def report_file(
    client_id: str,
    file: str,
    request: Request,
    session: SessionDep,
    _: ViewerKey,
    kind: ReportKind = ReportKind.WEEKLY,
    period: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    if file not in ("pdf", "csv"):
        raise Problem(404, f"no file '{file}': pdf or csv")
    row = await _stored_report(session, client_id, kind, period)
    stored = row.pdf if file == "pdf" else row.csv
    if not stored:
        raise Problem(404, f"report {row.id} has no {file.upper()} (only weekly reports do)")
    media = "application/pdf" if file == "pdf" else "text/csv; charset=utf-8"
    return await _document(request, stored, media, f"{row.id}.{file}")


# --- a client's reporting and its schedules ----------------------------------------------------


async def sync_report_schedules_quietly(request: Request, client_id: str) -> None:
    """Bring the client's report schedules in step after its settings or time zone changed.
    Best effort: the change is saved either way, and the worker syncs every client's when it
    starts, so a Temporal outage here only delays it."""
    settings: Settings = request.app.state.settings
    temporal: Client | None = request.app.state.temporal
    if temporal is None:
        return
    try:
        with temporal_call():
            await sync_client_reports(
                temporal,
                request.app.state.sessions,
                client_id,
                task_queue=settings.temporal_task_queue,
            )
    except (RPCError, Problem) as err:
        log.warning("report schedules of %s not synced now: %s", client_id, err)


async def _schedule_out(temporal: Client, kind: ReportKind, client_id: str) -> ScheduleOut:
    handle = temporal.get_schedule_handle(schedule_id(kind, client_id))
    try:
        with temporal_call():
            described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return ScheduleOut(schedule_id=schedule_id(kind, client_id), kind=kind, exists=False)
        log.warning("report schedule %s not described: %s", schedule_id(kind, client_id), err)
        return ScheduleOut(
            schedule_id=schedule_id(kind, client_id),
            kind=kind,
            exists=False,
            error=f"Temporal could not describe the schedule: {err.message}",
        )
    except Problem as problem:  # Temporal unreachable
        return ScheduleOut(
            schedule_id=schedule_id(kind, client_id),
            kind=kind,
            exists=False,
            error=problem.detail,
        )
    schedule, info = described.schedule, described.info
    recent: list[dict[str, object]] = []
    for action in list(info.recent_actions)[-5:]:
        workflow_id = getattr(action.action, "workflow_id", "")
        try:
            run_state: str | None = (await workflow_status(temporal, workflow_id)).name.lower()
        except RPCError:
            run_state = None
        recent.append(
            {
                "run_id": workflow_id,
                "scheduled_at": action.scheduled_at,
                "started_at": action.started_at,
                "status": run_state,
            }
        )
    hours = [r.start for entry in schedule.spec.calendars for r in entry.hour]
    window = schedule.policy.catchup_window
    assert isinstance(schedule.action, ScheduleActionStartWorkflow)
    return ScheduleOut(
        schedule_id=described.id,
        kind=kind,
        exists=True,
        paused=schedule.state.paused,
        note=schedule.state.note,
        hour=hours[0] if hours else None,
        timezone=schedule.spec.time_zone_name,
        next_runs=list(info.next_action_times)[:3],
        recent_runs=recent,
        catchup_window_seconds=window.total_seconds() if window else None,
    )


async def client_reports(
    session: SessionDep, temporal: Client, client: ClientRow
) -> ClientReportsOut:
    contacts = (
        await session.exec(select(ClientContact).where(col(ClientContact.client_id) == client.id))
    ).all()
    latest: dict[str, SentReport] = {}
    for kind in ReportKind:
        row = (
            await session.exec(
                select(ClientReport)
                .where(
                    col(ClientReport.client_id) == client.id,
                    col(ClientReport.kind) == kind.value,
                )
                .order_by(col(ClientReport.period).desc())
                .limit(1)
            )
        ).first()
        if row is not None:
            latest[kind.value] = sent_report(row)
    return ClientReportsOut(
        client_id=client.id,
        timezone=client.timezone,
        reporting=reporting_out(reporting_of(client.reporting), contacts),
        schedules=[await _schedule_out(temporal, kind, client.id) for kind in ReportKind],
        latest=latest,
    )


@router.get(
    "/clients/{client_id}/reports",
    summary="A client's reporting: settings, who receives it, its schedules, latest reports",
)
async def get_client_reports(
    client_id: str, session: SessionDep, temporal: TemporalDep, _: ViewerKey
) -> ClientReportsOut:
    client = await _client(session, client_id)
    return await client_reports(session, temporal, client)


async def pause_or_resume(
    session: SessionDep,
    temporal: Client,
    client_id: str,
    body: ScheduleNoteIn,
    note: str,
    *,
    pause: bool,
) -> ClientReportsOut:
    client = await _client(session, client_id)
    kinds = [body.kind] if body.kind else list(ReportKind)
    existing = [kind for kind in kinds if (await _schedule_out(temporal, kind, client_id)).exists]
    if not existing:
        which = f"the {body.kind.value} report" if body.kind else "any report"
        raise Problem(
            409,
            f"client '{client_id}' does not get {which}: there is no schedule to "
            f"{'pause' if pause else 'resume'} (turn reports on with PATCH /clients/{client_id})",
            slug="no-report-schedule",
        )
    for kind in existing:
        handle = temporal.get_schedule_handle(schedule_id(kind, client_id))
        with temporal_call():
            if pause:
                await handle.pause(note=note)
            else:
                await handle.unpause(note=note)
    return await client_reports(session, temporal, client)


@router.post(
    "/clients/{client_id}/reports/pause",
    summary="Pause the client's report schedules (ops)",
    description="Both, or the one `kind` names. No scheduled report is sent while paused "
    "(ops can still run one); the note is kept on the schedule; a paused schedule stays "
    "paused when the client's settings change. 409 when the client gets no such report.",
)
async def pause_reports(
    client_id: str, body: ScheduleNoteIn, session: SessionDep, temporal: TemporalDep, key: OpsKey
) -> ClientReportsOut:
    note = f"paused by ops:{key.name}: {body.note}"
    return await pause_or_resume(session, temporal, client_id, body, note, pause=True)


@router.post(
    "/clients/{client_id}/reports/resume",
    summary="Resume the client's report schedules (ops)",
    description="The runs missed while paused are not sent; the next one is.",
)
async def resume_reports(
    client_id: str, body: ScheduleNoteIn, session: SessionDep, temporal: TemporalDep, key: OpsKey
) -> ClientReportsOut:
    note = f"resumed by ops:{key.name}: {body.note}"
    return await pause_or_resume(session, temporal, client_id, body, note, pause=False)
