"""The ops console, `/console`: server-rendered pages, no JavaScript.

Every page calls the JSON routes' own functions (the list's filters, the case detail, the
actions, opening a failed-delivery case), so the console can do nothing the API would refuse
and refuses it with the API's reason. Auth is a signed session cookie made from a pasted API
key (see `api.console.auth`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import ValidationError
from sqlmodel import col, select

from api.case_models import CaseDetail
from api.casework import Reader, require_action
from api.console.auth import (
    LOGIN_PATH,
    ConsoleRoute,
    ConsoleUser,
    PostedForm,
    User,
    check_origin,
    clear_session_cookie,
    render,
    require_ops,
    see_other,
    set_session_cookie,
)
from api.console.forms import ListFilters, actions_for, failed_delivery_payload
from api.deps import (
    CaseRef,
    CurrentCase,
    Now,
    Pagination,
    SessionDep,
    SettingsDep,
    TemporalDep,
    current_key,
)
from api.errors import Problem, field_errors
from api.routes.cases import CaseAction, list_cases
from api.routes.clients import list_clients
from api.routes.depots import list_pickup_points
from api.routes.drivers import list_drivers
from api.routes.failed_deliveries import open_failed_delivery
from api.routes.messages import message_out
from schemas.case_types import CASE_TYPES
from schemas.enums import (
    CaseStatus,
    CaseType,
    DeliveryOutcome,
    FailureReason,
    RedeliveryOption,
    TimeWindow,
)
from schemas.requests import FailedDeliveryOpen
from schemas.tables import Message, Shipment

router = APIRouter(prefix="/console", tags=["console"], route_class=ConsoleRoute)
router_options: dict[str, Any] = {"response_class": HTMLResponse, "include_in_schema": False}

PAGE_SIZE = 50
ALL = Pagination(limit=200, offset=0)  # reference lists shown in a select


def case_url(case_id: str) -> str:
    return f"/console/cases/{quote(case_id, safe='')}"


# --- login -------------------------------------------------------------------------------


@router.get("/login", **router_options)
async def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", {"error": None})


@router.post("/login", **router_options)
async def login(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    check_origin(request, settings)
    form = await request.form()
    pasted = form.get("api_key")
    pasted = pasted.strip() if isinstance(pasted, str) else ""
    try:
        # The same lookup as `Authorization: Bearer`: unknown and revoked keys are refused.
        bearer = HTTPAuthorizationCredentials(scheme="Bearer", credentials=pasted)
        key = await current_key(session, bearer)
    except Problem as problem:
        message = "Paste your API key." if not pasted else "Unknown or revoked API key."
        return render(request, "login.html", {"error": message}, problem.status)
    response = see_other("/console")
    set_session_cookie(response, settings, key)
    return response


@router.post("/logout", **router_options)
async def logout(_: PostedForm, settings: SettingsDep) -> Response:
    response = see_other(LOGIN_PATH)
    clear_session_cookie(response, settings)
    return response


# --- the case list -----------------------------------------------------------------------


@router.get("", **router_options)
async def case_list(
    request: Request, user: User, session: SessionDep, settings: SettingsDep, now: Now
) -> HTMLResponse:
    filters, errors = ListFilters.parse(dict(request.query_params))
    page = await list_cases(
        session=session,
        settings=settings,
        now=now,
        _=user.key,
        page=Pagination(limit=PAGE_SIZE, offset=filters.offset),
        type=filters.type,
        status=filters.status,
        client_id=filters.client_id,
        escalated=filters.escalated,
        overdue=filters.overdue,
        q=filters.q,
    )

    def page_link(offset: int) -> str:
        return "/console?" + urlencode(filters.query(offset=offset or None))

    context = {
        "user": user,
        "page": page,
        "filters": filters,
        "errors": errors,
        "types": list(CaseType),
        "statuses": list(CaseStatus),
        "previous": page_link(max(0, page.offset - PAGE_SIZE)) if page.offset else None,
        "next": page_link(page.offset + PAGE_SIZE)
        if page.offset + PAGE_SIZE < page.total
        else None,
    }
    return render(request, "cases.html", context, 422 if errors else 200)


# --- opening a failed-delivery case ------------------------------------------------------


async def _open_form(
    request: Request,
    user: ConsoleUser,
    session: SessionDep,
    form: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "user": user,
        "form": form,
        "errors": errors or {},
        "clients": (await list_clients(session=session, _=user.key, page=ALL)).items,
        "drivers": (await list_drivers(session=session, _=user.key, page=ALL)).items,
        "reasons": list(FailureReason),
    }
    return render(request, "open_failed_delivery.html", context, status)


@router.get("/cases/new/failed-delivery", **router_options)
async def open_page(request: Request, user: User, session: SessionDep, now: Now) -> HTMLResponse:
    require_ops(user)
    defaults = {"attempt_number": "1", "attempted_at": f"{now:%Y-%m-%dT%H:%M}"}
    return await _open_form(request, user, session, defaults)


@router.post("/cases/new/failed-delivery", **router_options)
async def open_case(
    request: Request,
    user: User,
    form: PostedForm,
    temporal: TemporalDep,
    reader: Reader,
) -> Response:
    require_ops(user)
    try:
        body = FailedDeliveryOpen.model_validate(failed_delivery_payload(form, reader.now))
        detail = await open_failed_delivery(body, user.key, Response(), temporal, reader)
    except ValidationError as err:
        errors = field_errors(err.errors(), drop_location=False)
        fields = {e["field"]: e["message"] for e in errors}
        return await _open_form(request, user, reader.session, form, fields, 422)
    except Problem as problem:
        if problem.status != 422:
            raise
        fields = {e["field"]: e["message"] for e in problem.errors or []} or {"": problem.detail}
        return await _open_form(request, user, reader.session, form, fields, 422)
    return see_other(case_url(detail.case_id))


# --- one case ----------------------------------------------------------------------------


async def _case_page(
    request: Request,
    user: ConsoleUser,
    case: CaseRef,
    act: CaseAction,
    *,
    detail: CaseDetail | None = None,
    done: str | None = None,
    error: str | None = None,
    failed: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    reader = act.reader
    detail = detail or await reader.detail(case)
    # The bodies (for the <details> view) are not in the case detail: one ordered read.
    message_rows = await reader.session.exec(
        select(Message).where(Message.case_id == detail.case_id).order_by(col(Message.created_at))
    )
    messages = [message_out(row, user.key) for row in message_rows.all()]
    type_actions = actions_for(detail.type)
    actions = [name for name in type_actions if user.can_act and name in detail.allowed_actions]
    pickup_points: list[Any] = []
    country = "US"
    depot_id = detail.details.get("depot_id")
    if "redelivery" in actions and isinstance(depot_id, str):
        try:
            points = await list_pickup_points(depot_id, reader.session, user.key, ALL)
            pickup_points = points.items
        except Problem:  # the depot is gone: the other options still work
            pickup_points = []
        shipment = await reader.session.get(Shipment, detail.business_key)
        country = (shipment.address.get("country") if shipment else None) or country
    context = {
        "user": user,
        "case": detail,
        "messages": messages,  # oldest first, like the timeline
        "actions": {name: type_actions[name] for name in actions},
        "flash": type_actions[done].done if done in type_actions else None,
        "error": error,
        "failed": failed,
        "form": form or {},
        "now": reader.now,
        "pickup_points": pickup_points,
        "country": country,
        "options": list(RedeliveryOption),
        "windows": list(TimeWindow),
        "outcomes": list(DeliveryOutcome),
        "reasons": list(FailureReason),
    }
    return render(request, "case.html", context, status)


@router.get("/cases/{case_id}", **router_options)
async def case_page(
    request: Request, user: User, case: CurrentCase, reader: Reader, done: str | None = None
) -> HTMLResponse:
    return await _case_page(request, user, case, CaseAction(case, reader), done=done)


@router.post("/cases/{case_id}/{action}", **router_options)
async def case_action(
    action: str, request: Request, user: User, form: PostedForm, case: CurrentCase, reader: Reader
) -> Response:
    if not any(spec.action(action) for spec in CASE_TYPES.values()):
        raise Problem(404, f"no such action: {action}")
    require_ops(user)
    type_actions = actions_for(require_action(case.case_id, action).case_type)
    if action not in type_actions:
        raise Problem(404, f"the console has no form for '{action}'")
    spec, act = type_actions[action], CaseAction(case, reader)
    try:
        body = spec.model.model_validate(spec.payload(form, reader.now))
        await spec.run(body, user.key, act)
    except ValidationError as err:
        errors = field_errors(err.errors(), drop_location=False)
        message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return await _case_page(
            request, user, case, act, error=message, failed=action, form=form, status=422
        )
    except Problem as problem:
        if problem.status not in (409, 422):
            raise
        return await _case_page(
            request,
            user,
            case,
            act,
            error=problem.detail,
            failed=action,
            form=form,
            status=problem.status,
        )
    return see_other(f"{case_url(case.case_id)}?{urlencode({'done': action})}")
