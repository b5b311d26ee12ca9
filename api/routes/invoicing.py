"""Invoicing: runs (`POST /invoicing-runs`, `GET /invoicing-runs/{run_id}`), invoices
(`GET /invoices`, `GET /invoices/{id}`, its PDF and CSV) and each client's schedule
(`GET /clients/{id}/invoicing`, `POST .../pause`, `POST .../resume`).

A run is a Temporal workflow (`InvoicingRunWorkflow`, started by name): the API checks the
client and the period, starts it under the business key
`invoicing-run-{client_id}-{start}-{end}` (a run already going for that period is joined, never
doubled; a finished one may run again and answers with the same invoice) and waits up to 30 s
for its answer (then 202 with the run's id to poll)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict, Field
from sqlalchemy import or_
from sqlmodel import col, select
from temporalio.client import (
    Client,
    ScheduleOverlapPolicy,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import (
    Now,
    OpsKey,
    PageDep,
    SessionDep,
    SettingsDep,
    TemporalDep,
    TimeoutsDep,
    ViewerKey,
    workflow_status,
)
from api.errors import Problem, invalid, invalid_fields, problem_from_temporal, temporal_call
from api.invoice_models import (
    InvoiceDetail,
    InvoiceStatus,
    InvoiceSummary,
    InvoicingScheduleOut,
    RunFailure,
    RunOut,
    ScheduleRunOut,
    detail,
    summary,
)
from api.listing import paginate
from api.models import In, Page
from api.routes.documents import content_disposition
from api.runs import start_and_wait
from core.documents import DocumentNotFound
from core.invoicing_schedules import cycle_of, sync_client_schedule
from core.settings import Settings
from core.temporal import CLIENT_ID
from schemas import examples
from schemas.enums import CaseStatus, Resolution
from schemas.examples import example
from schemas.invoicing import (
    CASE_REFUSED,
    NUMBER_UNAVAILABLE,
    PERIOD_OVERLAP,
    PRICING_FAILED,
    RUN_WORKFLOW,
    UNKNOWN_CLIENT,
    InvoicingRunInput,
    InvoicingRunResult,
    RunOutcome,
    number_problem,
    run_workflow_id,
    schedule_id,
)
from schemas.tables import Case, Invoice, InvoiceLine, Message
from schemas.tables import Client as ClientRow

log = logging.getLogger("casedesk.api")

router = APIRouter(tags=["invoicing"])

MAX_PERIOD_DAYS = 366


class InvoicingRunIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.invoicing_run))

    client_id: str = Field(min_length=1, max_length=64)
    period_start: dt.date = Field(description="The first day billed, in the client's time zone.")
    period_end: dt.date = Field(
        description="The last day billed (included); a day already over in the client's zone."
    )


class ScheduleNoteIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.schedule_note))

    note: str = Field(min_length=1, max_length=500, description="Why, for whoever looks next.")


# --- runs ----------------------------------------------------------------------------------


async def _checked_client(session: SessionDep, body: InvoicingRunIn, now: dt.datetime) -> ClientRow:
    """422 naming the field for an unknown client, a period that ends before it starts, has
    not ended yet in the client's time zone, or is longer than a year."""
    client = await session.get(ClientRow, body.client_id)
    errors: list[dict[str, str]] = []
    if client is None:
        errors.append({"field": "client_id", "message": f"unknown client '{body.client_id}'"})
    elif (problem := number_problem(client.id)) is not None:
        errors.append({"field": "client_id", "message": problem})
    if body.period_end < body.period_start:
        errors.append(
            {
                "field": "period_end",
                "message": f"{body.period_end.isoformat()} is before period_start "
                f"({body.period_start.isoformat()})",
            }
        )
    elif (body.period_end - body.period_start).days + 1 > MAX_PERIOD_DAYS:
        errors.append(
            {"field": "period_end", "message": f"a period is at most {MAX_PERIOD_DAYS} days"}
        )
    if client is not None:
        today = now.astimezone(ZoneInfo(client.timezone)).date()
        if body.period_end >= today:
            errors.append(
                {
                    "field": "period_end",
                    "message": f"the period must be over: {body.period_end.isoformat()} is not "
                    f"before today ({today.isoformat()} in {client.timezone})",
                }
            )
    if errors or client is None:
        raise invalid_fields(errors)
    return client


def _failure(err: BaseException) -> RunFailure:
    cause = err.cause if isinstance(err, WorkflowFailureError) else err
    if isinstance(cause, ApplicationError):
        details = list(cause.details)
        problems = [str(p) for p in details[0]] if details and isinstance(details[0], list) else []
        return RunFailure(type=cause.type, message=cause.message, problems=problems)
    return RunFailure(type=None, message=str(cause))


def _run_problem(err: WorkflowFailureError, run_id: str) -> Problem:
    """A failed run as the HTTP answer, by its failure type."""
    failure = _failure(err)
    extra: dict[str, Any] = {"run_id": run_id, "failure_type": failure.type}
    if failure.type == PRICING_FAILED:
        extra["problems"] = failure.problems
        return Problem(422, failure.message, slug="invoice-not-priceable", extra=extra)
    if failure.type == PERIOD_OVERLAP:
        return Problem(409, failure.message, slug="period-overlaps-invoice", extra=extra)
    if failure.type in (UNKNOWN_CLIENT, NUMBER_UNAVAILABLE, CASE_REFUSED):
        problem = invalid("client_id", failure.message)
        problem.extra = extra
        return problem
    return Problem(500, f"the invoicing run failed: {failure.message}", extra=extra)


async def _invoice_detail(session: SessionDep, invoice_id: str) -> InvoiceDetail | None:
    invoice = await session.get(Invoice, invoice_id, populate_existing=True)
    if invoice is None:
        return None
    case = await session.get(Case, invoice.case_id, populate_existing=True)
    lines = await session.exec(
        select(InvoiceLine)
        .where(col(InvoiceLine.invoice_id) == invoice.id)
        .order_by(col(InvoiceLine.position))
    )
    message = (
        await session.exec(select(Message).where(col(Message.key) == invoice.message_key))
    ).first()
    return detail(invoice, case, list(lines.all()), message)


async def _run_out(
    session: SessionDep,
    settings: Settings,
    run_id: str,
    client_id: str,
    result: InvoicingRunResult | None,
    *,
    run_status: str,
    failure: RunFailure | None = None,
) -> RunOut:
    invoice = (
        await _invoice_detail(session, result.invoice_id) if result and result.invoice_id else None
    )
    return RunOut(
        run_id=run_id,
        status=run_status,
        outcome=result.outcome if result else None,
        message=result.message if result else (failure.message if failure else None),
        client_id=client_id,
        period_start=result.period_start if result else None,
        period_end=result.period_end if result else None,
        invoice=invoice,
        emailed=result.emailed if result else None,
        email_problem=result.email_problem if result else None,
        failure=failure,
        trace_url=settings.trace_url(run_id),
    )


@router.post(
    "/invoicing-runs",
    status_code=status.HTTP_201_CREATED,
    summary="Invoice a client for a period (ops)",
    description="Runs `invoicing-run-{client_id}-{period_start}-{period_end}`: prices the "
    "client's stops in the period (dates in the client's time zone) with its rate agreement "
    "history, records the invoice under the client's next number (`INV-{CLIENT}-000042`), "
    "renders its PDF and the CSV of every stop, emails both to the billing contact and opens "
    "the unpaid-invoice case. 201 with the invoice; 200 with the same invoice for a period "
    "already invoiced; 200 with `outcome: no_records` and no invoice for a period without "
    "stops; 202 with the run (poll `GET /invoicing-runs/{run_id}`) when it takes longer than "
    "30 s. 422 naming the field for an unknown client or a period that ends before it "
    "starts, is not over yet in the client's time zone, or is longer than 366 days; 422 "
    "`invoice-not-priceable` with every `problems` when the period cannot be priced (no "
    "agreement in force, an unpriced zone, mixed currencies); 409 when the period overlaps "
    "another invoice of the client.",
    responses={
        200: {"description": "Invoiced already (the same invoice), or nothing to invoice."},
        202: {"description": "Still running: poll the Location."},
        409: {"description": "The period overlaps another invoice."},
    },
)
async def start_invoicing_run(
    body: InvoicingRunIn,
    key: OpsKey,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    timeouts: TimeoutsDep,
    now: Now,
) -> RunOut:
    client = await _checked_client(session, body, now)
    run_id = run_workflow_id(client.id, body.period_start, body.period_end)
    answer = await start_and_wait(
        temporal,
        workflow=RUN_WORKFLOW,
        arg=InvoicingRunInput(
            client_id=client.id,
            period_start=body.period_start,
            period_end=body.period_end,
            requested_by=f"ops:{key.name}",
        ),
        run_id=run_id,
        client_id=client.id,
        task_queue=settings.temporal_task_queue,
        result_type=InvoicingRunResult,
        wait=timeouts.run,
        summary=f"Invoicing run · client {client.id} · "
        f"{body.period_start.isoformat()} to {body.period_end.isoformat()}",
    )
    if answer.failure is not None:
        raise _run_problem(answer.failure, run_id)
    result = answer.result
    if result is None:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = f"/invoicing-runs/{run_id}"
        return await _run_out(session, settings, run_id, client.id, None, run_status="running")
    if result.outcome is RunOutcome.ISSUED:
        response.headers["Location"] = f"/invoices/{result.invoice_id}"
    else:
        response.status_code = status.HTTP_200_OK
    return await _run_out(session, settings, run_id, client.id, result, run_status="completed")


@router.get(
    "/invoicing-runs/{run_id}",
    summary="An invoicing run: running, or its answer",
    description="A run ops started or a scheduled one (`invoicing-run-{client}-{nominal time}`): "
    "its status and, once it has one, its outcome and invoice, or its failure (type, message, "
    "problems).",
)
async def get_invoicing_run(
    run_id: str,
    _: ViewerKey,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> RunOut:
    if not run_id.startswith("invoicing-run-"):
        raise Problem(404, f"unknown invoicing run '{run_id}'")
    try:
        execution = await workflow_status(temporal, run_id)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise Problem(404, f"unknown invoicing run '{run_id}'") from None
        raise (problem_from_temporal(err) or err) from None
    handle = temporal.get_workflow_handle(run_id, result_type=InvoicingRunResult)
    with temporal_call():
        described = await handle.describe()
    client_id = str(described.typed_search_attributes.get(CLIENT_ID) or "")
    name = execution.name.lower()
    if execution == WorkflowExecutionStatus.RUNNING:
        return await _run_out(session, settings, run_id, client_id, None, run_status=name)
    try:
        with temporal_call():
            result = await handle.result(follow_runs=False)
    except WorkflowFailureError as err:
        return await _run_out(
            session, settings, run_id, client_id, None, run_status=name, failure=_failure(err)
        )
    return await _run_out(session, settings, run_id, client_id, result, run_status=name)


# --- invoices ------------------------------------------------------------------------------


_STATUS_FILTERS = {
    InvoiceStatus.ISSUED: col(Case.id).is_(None),
    InvoiceStatus.OPEN: col(Case.id).is_not(None)
    & col(Case.status).not_in([CaseStatus.CLOSED, CaseStatus.CANCELLED]),
    InvoiceStatus.PAID: col(Case.resolution) == Resolution.PAID,
    InvoiceStatus.WRITTEN_OFF: col(Case.resolution) == Resolution.WRITTEN_OFF,
    InvoiceStatus.CANCELLED: or_(
        col(Case.status) == CaseStatus.CANCELLED, col(Case.resolution) == Resolution.CANCELLED
    ),
}


@router.get(
    "/invoices",
    summary="Invoices, newest first",
    description="Filter by `client_id` and `status` (`issued` until the unpaid-invoice case "
    "is open, then `open`, `paid`, `written_off` or `cancelled` as the case says).",
)
async def list_invoices(
    session: SessionDep,
    _: ViewerKey,
    page: PageDep,
    client_id: Annotated[str | None, Query(max_length=64)] = None,
    invoice_status: Annotated[InvoiceStatus | None, Query(alias="status")] = None,
) -> Page[InvoiceSummary]:
    statement = select(Invoice, Case).outerjoin(Case, col(Case.id) == col(Invoice.case_id))
    if client_id is not None:
        statement = statement.where(col(Invoice.client_id) == client_id)
    if invoice_status is not None:
        statement = statement.where(_STATUS_FILTERS[invoice_status])
    statement = statement.order_by(col(Invoice.issued_on).desc(), col(Invoice.id).desc())
    rows, total = await paginate(session, statement, page)
    return Page(
        items=[summary(invoice, case) for invoice, case in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get(
    "/invoices/{invoice_id}",
    summary="One invoice: its lines, totals, documents, email and case",
)
async def get_invoice(invoice_id: str, session: SessionDep, _: ViewerKey) -> InvoiceDetail:
    found = await _invoice_detail(session, invoice_id)
    if found is None:
        raise Problem(404, f"unknown invoice '{invoice_id}'", slug="unknown-invoice")
    return found


async def _document(request: Request, session: SessionDep, invoice_id: str, kind: str) -> Response:
    invoice = await session.get(Invoice, invoice_id)
    if invoice is None:
        raise Problem(404, f"unknown invoice '{invoice_id}'", slug="unknown-invoice")
    doc_id, sha256, content_type = (
        (invoice.pdf_document_id, invoice.pdf_sha256, "application/pdf")
        if kind == "pdf"
        else (invoice.csv_document_id, invoice.csv_sha256, "text/csv; charset=utf-8")
    )
    if not doc_id:
        raise Problem(404, f"invoice '{invoice_id}' has no {kind.upper()} yet: its run renders it")
    store = request.app.state.documents
    try:
        data = await run_in_threadpool(store.get, doc_id)
    except DocumentNotFound:
        log.error("document %s of invoice %s is not in the store", doc_id, invoice_id)
        raise Problem(404, f"the {kind.upper()} of '{invoice_id}' is no longer stored") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        log.error("document %s of invoice %s does not match its checksum", doc_id, invoice_id)
        raise Problem(500, f"the {kind.upper()} of '{invoice_id}' does not match its checksum")
    return Response(
        content=data,
        media_type=content_type,
        headers={
            "Content-Disposition": content_disposition(f"{invoice.id}.{kind}"),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/invoices/{invoice_id}/pdf",
    summary="The invoice's PDF, as emailed",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def invoice_pdf(
    invoice_id: str, request: Request, session: SessionDep, _: ViewerKey
) -> Response:
    return await _document(request, session, invoice_id, "pdf")


@router.get(
    "/invoices/{invoice_id}/csv",
    summary="Every stop the invoice bills, as a CSV, as emailed",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def invoice_csv(
    invoice_id: str, request: Request, session: SessionDep, _: ViewerKey
) -> Response:
    return await _document(request, session, invoice_id, "csv")


# --- the client's schedule -------------------------------------------------------------------


async def sync_schedule_quietly(request: Request, client_id: str) -> None:
    """Bring the client's schedule in step after its agreement or time zone changed. Best
    effort: the change is saved either way, and the worker syncs every schedule when it
    starts (as does every scheduled run), so a Temporal outage here only delays it."""
    settings: Settings = request.app.state.settings
    temporal: Client | None = request.app.state.temporal
    if temporal is None:
        return
    try:
        with temporal_call():
            await sync_client_schedule(
                temporal,
                request.app.state.sessions,
                client_id,
                task_queue=settings.temporal_task_queue,
                now=dt.datetime.now(dt.UTC),
            )
    except (RPCError, Problem) as err:
        log.warning("invoicing schedule of %s not synced now: %s", client_id, err)


async def _schedule_out(temporal: Client, client_id: str) -> InvoicingScheduleOut:
    handle = temporal.get_schedule_handle(schedule_id(client_id))
    try:
        with temporal_call():
            described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise Problem(
                404,
                f"client '{client_id}' has no invoicing schedule (it has one once it has a rate "
                "agreement)",
                slug="no-invoicing-schedule",
            ) from None
        raise (problem_from_temporal(err) or err) from None
    schedule, info = described.schedule, described.info
    recent: list[ScheduleRunOut] = []
    for action in list(info.recent_actions)[-5:]:
        started = action.action
        workflow_id = getattr(started, "workflow_id", "")
        run_state: str | None = None
        try:
            run_state = (await workflow_status(temporal, workflow_id)).name.lower()
        except RPCError:
            run_state = None
        recent.append(
            ScheduleRunOut(
                run_id=workflow_id,
                scheduled_at=action.scheduled_at,
                started_at=action.started_at,
                status=run_state,
            )
        )
    cycle = cycle_of(schedule.spec)
    window = schedule.policy.catchup_window
    return InvoicingScheduleOut(
        schedule_id=described.id,
        client_id=client_id,
        cycle=cycle.value if cycle else None,
        timezone=schedule.spec.time_zone_name,
        paused=schedule.state.paused,
        note=schedule.state.note,
        next_runs=list(info.next_action_times)[:3],
        recent_runs=recent,
        catchup_window_seconds=window.total_seconds() if window else None,
        overlap=ScheduleOverlapPolicy(schedule.policy.overlap).name.lower(),
    )


async def _known_client(session: SessionDep, client_id: str) -> ClientRow:
    client = await session.get(ClientRow, client_id)
    if client is None:
        raise Problem(404, f"unknown client '{client_id}'")
    return client


@router.get(
    "/clients/{client_id}/invoicing",
    tags=["invoicing"],
    summary="The client's invoicing schedule: cycle, time zone, paused, next and recent runs",
)
async def get_invoicing_schedule(
    client_id: str, session: SessionDep, temporal: TemporalDep, _: ViewerKey
) -> InvoicingScheduleOut:
    await _known_client(session, client_id)
    return await _schedule_out(temporal, client_id)


async def _pause_or_resume(
    temporal: Client, client_id: str, note: str, *, pause: bool
) -> InvoicingScheduleOut:
    await _schedule_out(temporal, client_id)  # 404 when there is none
    handle = temporal.get_schedule_handle(schedule_id(client_id))
    with temporal_call():
        if pause:
            await handle.pause(note=note)
        else:
            await handle.unpause(note=note)
    return await _schedule_out(temporal, client_id)


@router.post(
    "/clients/{client_id}/invoicing/pause",
    summary="Pause the client's invoicing schedule (ops)",
    description="No scheduled run starts while paused (runs ops start still do). The note is "
    "kept on the schedule. When it resumes, its next run bills from the day after the "
    "client's last invoice, so the paused cycles are billed then, once.",
)
async def pause_invoicing(
    client_id: str, body: ScheduleNoteIn, session: SessionDep, temporal: TemporalDep, key: OpsKey
) -> InvoicingScheduleOut:
    await _known_client(session, client_id)
    return await _pause_or_resume(
        temporal, client_id, f"paused by ops:{key.name}: {body.note}", pause=True
    )


@router.post(
    "/clients/{client_id}/invoicing/resume",
    summary="Resume the client's invoicing schedule (ops)",
)
async def resume_invoicing(
    client_id: str, body: ScheduleNoteIn, session: SessionDep, temporal: TemporalDep, key: OpsKey
) -> InvoicingScheduleOut:
    await _known_client(session, client_id)
    return await _pause_or_resume(
        temporal, client_id, f"resumed by ops:{key.name}: {body.note}", pause=False
    )
