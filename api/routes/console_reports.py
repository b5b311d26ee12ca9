"""The console's reports pages: `/console/reports` (every client and whether it gets reports)
and `/console/reports/{client_id}` (the latest report of each kind with its figures and
charts, the schedules and whether they are paused, who receives the reports, and for ops: run
one now, pause, resume). Every page and form calls the JSON routes' own functions
(`api.routes.reports`), so the console does and refuses exactly what the API does."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlmodel import col, select

from api.console.auth import (
    ConsoleRoute,
    PostedForm,
    User,
    render,
    require_ops,
    see_other,
)
from api.deps import Now, SessionDep, SettingsDep, TemporalDep, TimeoutsDep
from api.errors import Problem, field_errors
from api.models import ContactOut
from api.report_models import ReportRunIn, ScheduleNoteIn
from api.routes.reports import (
    client_reports,
    latest_complete,
    pause_or_resume,
    report_chart,
    start_report_run,
)
from schemas.report_figures import Report, figure_table
from schemas.reporting import ReportKind
from schemas.tables import Client as ClientRow
from schemas.tables import ClientContact, ClientReport

router = APIRouter(prefix="/console", tags=["console"], route_class=ConsoleRoute)
router_options: dict[str, Any] = {"response_class": HTMLResponse, "include_in_schema": False}

# The console's own policy, plus its charts (served by the console from this origin).
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def reports_url(client_id: str, **query: str) -> str:
    url = f"/console/reports/{quote(client_id, safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


@router.get("/reports", **router_options)
async def reports_index(request: Request, user: User, session: SessionDep) -> HTMLResponse:
    clients = (await session.exec(select(ClientRow).order_by(col(ClientRow.id)))).all()
    return render(request, "reports.html", {"user": user, "clients": clients})


async def _page(
    request: Request,
    user: User,
    session: SessionDep,
    temporal: TemporalDep,
    now: Now,
    client_id: str,
    *,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    client = await session.get(ClientRow, client_id)
    if client is None:
        raise Problem(404, f"unknown client '{client_id}'")
    state = await client_reports(session, temporal, client)
    latest: dict[str, Any] = {}
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
            report = Report.model_validate(row.figures)
            latest[kind.value] = {
                "row": row,
                "report": report,
                "table": figure_table(report),
                "charts": [
                    reports_url(client.id)
                    + f"/charts/{name}.png?"
                    + urlencode({"period": row.period})
                    for name in row.charts
                ],
            }
    contacts = (
        await session.exec(
            select(ClientContact)
            .where(col(ClientContact.client_id) == client.id)
            .order_by(col(ClientContact.name))
        )
    ).all()
    by_id = {c.id: ContactOut.model_validate(c) for c in contacts}
    context = {
        "user": user,
        "client": client,
        "state": state,
        "recipients": [by_id[i] for i in state.reporting.recipients if i in by_id],
        "latest": latest,
        "defaults": {
            kind.value: latest_complete(kind, now, client.timezone) for kind in ReportKind
        },
        "done": done,
        "error": error,
    }
    response = render(request, "reports_client.html", context, status)
    response.headers["Content-Security-Policy"] = CSP
    return response


@router.get("/reports/{client_id}", **router_options)
async def client_reports_page(
    client_id: str,
    request: Request,
    user: User,
    session: SessionDep,
    temporal: TemporalDep,
    now: Now,
    done: str | None = None,
) -> HTMLResponse:
    return await _page(request, user, session, temporal, now, client_id, done=done)


@router.get("/reports/{client_id}/charts/{name}.png", include_in_schema=False)
async def console_chart(
    client_id: str,
    name: str,
    request: Request,
    user: User,
    session: SessionDep,
    period: str | None = None,
) -> Response:
    """A chart for a console session (any role): the JSON route's stored chart."""
    return await report_chart(
        client_id, name, request, session, user.key, ReportKind.WEEKLY, period
    )


@router.post("/reports/{client_id}/runs", **router_options)
async def run_now(
    client_id: str,
    request: Request,
    user: User,
    form: PostedForm,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    timeouts: TimeoutsDep,
    now: Now,
) -> Response:
    require_ops(user)
    try:
        body = ReportRunIn.model_validate(
            {"client_id": client_id, "kind": form.get("kind"), "period": form.get("period")}
        )
        result = await start_report_run(
            body, user.key, Response(), session, settings, temporal, timeouts, now
        )
    except ValidationError as err:
        message = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(err.errors()))
        return await _page(
            request, user, session, temporal, now, client_id, error=message, status=422
        )
    except Problem as problem:
        if problem.status != 422:
            raise
        return await _page(
            request, user, session, temporal, now, client_id, error=problem.detail, status=422
        )
    outcome = result.outcome.value if result.outcome else result.status
    return see_other(reports_url(client_id, done=f"{result.run_id}: {outcome}"))


async def _schedule_form(
    client_id: str,
    request: Request,
    user: User,
    form: dict[str, str],
    session: SessionDep,
    temporal: TemporalDep,
    now: Now,
    *,
    pause: bool,
) -> Response:
    require_ops(user)
    try:
        body = ScheduleNoteIn.model_validate(
            {"note": form.get("note", ""), "kind": form.get("kind") or None}
        )
        verb = "paused" if pause else "resumed"
        await pause_or_resume(
            session,
            temporal,
            client_id,
            body,
            f"{verb} by ops:{user.key.name}: {body.note}",
            pause=pause,
        )
    except ValidationError as err:
        message = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(err.errors()))
        return await _page(
            request, user, session, temporal, now, client_id, error=message, status=422
        )
    except Problem as problem:
        if problem.status != 409:
            raise
        return await _page(
            request, user, session, temporal, now, client_id, error=problem.detail, status=409
        )
    return see_other(reports_url(client_id, done="paused" if pause else "resumed"))


@router.post("/reports/{client_id}/pause", **router_options)
async def pause(
    client_id: str,
    request: Request,
    user: User,
    form: PostedForm,
    session: SessionDep,
    temporal: TemporalDep,
    now: Now,
) -> Response:
    return await _schedule_form(client_id, request, user, form, session, temporal, now, pause=True)


@router.post("/reports/{client_id}/resume", **router_options)
async def resume(
    client_id: str,
    request: Request,
    user: User,
    form: PostedForm,
    session: SessionDep,
    temporal: TemporalDep,
    now: Now,
) -> Response:
    return await _schedule_form(client_id, request, user, form, session, temporal, now, pause=False)
