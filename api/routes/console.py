"""The ops console, `/console`: server-rendered pages, no JavaScript.

Every page calls the JSON routes' own functions (the list's filters, the case detail, the
actions and uploads, opening a case, document downloads), so the console can
do nothing the API would refuse and refuses it with the API's reason. Auth is a signed
session cookie made from a pasted API key (see `api.console.auth`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlmodel import col, select
from starlette.exceptions import HTTPException
from temporalio.client import Client

from api.case_models import CaseDetail
from api.casework import PACKAGE_KIND, CaseReader, Reader, require_action
from api.console.auth import (
    COOKIE,
    CSRF_FIELD,
    LOGIN_PATH,
    ConsoleRoute,
    ConsoleUser,
    PostedForm,
    User,
    check_csrf,
    check_origin,
    clear_session_cookie,
    end_session,
    posted_form,
    render,
    require_ops,
    see_other,
    set_session_cookie,
    start_session,
)
from api.console.forms import (
    Action,
    ListFilters,
    actions_for,
    driver_onboarding_payload,
    failed_delivery_payload,
    in_review,
    is_upload,
)
from api.deps import (
    CaseRef,
    CurrentCase,
    DocumentsDep,
    Now,
    Pagination,
    SessionDep,
    SettingsDep,
    TemporalDep,
    current_key,
)
from api.driver_page import driver_items
from api.errors import Problem, field_errors
from api.routes.cases import CaseAction, list_cases
from api.routes.clients import list_clients
from api.routes.depots import list_depots, list_pickup_points
from api.routes.documents import download_document
from api.routes.drivers import list_drivers
from api.routes.drivers_onboarding import open_driver_onboarding
from api.routes.failed_deliveries import open_failed_delivery
from api.routes.messages import message_out
from api.temporal_views import temporal_views
from api.upload_page import file_types, label
from core.documents import DocumentStore
from schemas.case_types import CASE_TYPES, spec_for, spec_for_case_id
from schemas.claims import ClaimDecision
from schemas.documents import DocumentKind
from schemas.enums import (
    CaseStatus,
    CaseType,
    DeliveryOutcome,
    FailureReason,
    RedeliveryOption,
    TimeWindow,
    VehicleType,
)
from schemas.onboarding import ItemStatus
from schemas.requests import DriverOnboardingOpen, FailedDeliveryOpen
from schemas.tables import ApiKey, Depot, Message, Shipment

router = APIRouter(prefix="/console", tags=["console"], route_class=ConsoleRoute)
router_options: dict[str, Any] = {"response_class": HTMLResponse, "include_in_schema": False}

PAGE_SIZE = 50
TOO_MANY = "Too many wrong keys from this address. Please wait a minute and try again."
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
        # The same lookup as `Authorization: Bearer`: unknown and revoked keys are refused,
        # and counted against the address (429 once it has failed too often).
        bearer = HTTPAuthorizationCredentials(scheme="Bearer", credentials=pasted)
        key = await current_key(request, session, bearer)
    except Problem as problem:
        message = "Paste your API key." if not pasted else "Unknown or revoked API key."
        if problem.status == 429:
            return render(request, "login.html", {"error": TOO_MANY}, 429, problem.headers)
        return render(request, "login.html", {"error": message}, problem.status)
    response = see_other("/console")
    set_session_cookie(response, settings, await start_session(session, key, datetime.now(UTC)))
    return response


@router.post("/logout", **router_options)
async def logout(
    request: Request, _: PostedForm, session: SessionDep, settings: SettingsDep
) -> Response:
    await end_session(session, request.cookies.get(COOKIE), datetime.now(UTC))
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

    depot_ids = (await session.exec(select(Depot.id).order_by(col(Depot.id)).limit(20))).all()

    context = {
        "user": user,
        "page": page,
        "filters": filters,
        "errors": errors,
        "types": list(CaseType),
        "statuses": list(CaseStatus),
        "temporal_views": temporal_views(
            settings,
            now,
            client_id=filters.client_id,
            case_type=filters.type,
            depot_ids=tuple(depot_ids),
        ),
        "previous": page_link(max(0, page.offset - PAGE_SIZE)) if page.offset else None,
        "next": page_link(page.offset + PAGE_SIZE)
        if page.offset + PAGE_SIZE < page.total
        else None,
    }
    return render(request, "cases.html", context, 422 if errors else 200)


# --- opening a case ----------------------------------------------------------------------


async def _failed_delivery_choices(session: SessionDep, key: ApiKey) -> dict[str, Any]:
    return {
        "clients": (await list_clients(session=session, _=key, page=ALL)).items,
        "drivers": (await list_drivers(session=session, _=key, page=ALL)).items,
        "reasons": list(FailureReason),
    }


async def _driver_onboarding_choices(session: SessionDep, key: ApiKey) -> dict[str, Any]:
    return {
        "depots": (await list_depots(session=session, _=key, page=ALL)).items,
        "vehicle_types": list(VehicleType),
    }


@dataclass(frozen=True)
class OpenForm:
    """A console page that opens a case through the JSON route's own function: the form's
    template and what it offers, and how its fields become the route's body."""

    template: str
    model: type[BaseModel]
    payload: Callable[[dict[str, str], datetime], dict[str, Any]]
    open: Callable[[Any, ApiKey, Response, Client, CaseReader], Awaitable[CaseDetail]]
    choices: Callable[[SessionDep, ApiKey], Awaitable[dict[str, Any]]]
    defaults: Callable[[datetime], dict[str, str]]


OPEN_FORMS: dict[str, OpenForm] = {
    "failed-delivery": OpenForm(
        "open_failed_delivery.html",
        FailedDeliveryOpen,
        failed_delivery_payload,
        open_failed_delivery,
        _failed_delivery_choices,
        lambda now: {"attempt_number": "1", "attempted_at": f"{now:%Y-%m-%dT%H:%M}"},
    ),
    "driver-onboarding": OpenForm(
        "open_driver_onboarding.html",
        DriverOnboardingOpen,
        driver_onboarding_payload,
        open_driver_onboarding,
        _driver_onboarding_choices,
        lambda now: {"planned_start_date": f"{now + timedelta(days=7):%Y-%m-%d}"},
    ),
}
"""`/console/cases/new/{name}`: the case types ops open from the console."""


def _open_form_for(name: str) -> OpenForm:
    opening = OPEN_FORMS.get(name)
    if opening is None:
        raise Problem(404, f"the console opens no '{name}' cases")
    return opening


async def _open_form(
    request: Request,
    user: ConsoleUser,
    session: SessionDep,
    opening: OpenForm,
    form: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    choices = await opening.choices(session, user.key)
    context = {"user": user, "form": form, "errors": errors or {}, **choices}
    return render(request, opening.template, context, status)


@router.get("/cases/new/{name}", **router_options)
async def open_page(
    name: str, request: Request, user: User, session: SessionDep, now: Now
) -> HTMLResponse:
    require_ops(user)
    opening = _open_form_for(name)
    return await _open_form(request, user, session, opening, opening.defaults(now))


@router.post("/cases/new/{name}", **router_options)
async def open_case(
    name: str,
    request: Request,
    user: User,
    form: PostedForm,
    temporal: TemporalDep,
    reader: Reader,
) -> Response:
    require_ops(user)
    opening = _open_form_for(name)
    try:
        body = opening.model.model_validate(opening.payload(form, reader.now))
        detail = await opening.open(body, user.key, Response(), temporal, reader)
    except ValidationError as err:
        errors = field_errors(err.errors(), drop_location=False)
        fields = {e["field"]: e["message"] for e in errors}
        return await _open_form(request, user, reader.session, opening, form, fields, 422)
    except Problem as problem:
        if problem.status not in (409, 422):
            raise
        fields = {e["field"]: e["message"] for e in problem.errors or []} or {"": problem.detail}
        return await _open_form(request, user, reader.session, opening, form, fields, 422)
    return see_other(case_url(detail.case_id))


# --- one case ----------------------------------------------------------------------------

# A case's evidence has its own card (checklist rows, download links), not the details list.
_EVIDENCE_KEYS = ("checklist", "renewals", "documents", "package_id")
_PACKAGE_LABEL = "Claim package"
_PACKAGE_HINT = "The filed claim: cover sheet, manifest and every document, as one ZIP."
_DRIVER_TYPES = (CaseType.DRIVER_ONBOARDING, CaseType.DRIVER_COMPLIANCE)


def document_url(case_id: str, document_id: str) -> str:
    return f"{case_url(case_id)}/documents/{quote(document_id, safe='')}"


def _kind(value: Any) -> dict[str, str]:
    """A document kind as the page shows it: its label and what it is."""
    try:
        kind = DocumentKind(value)
    except ValueError:
        return {"value": str(value), "label": str(value).replace("_", " "), "hint": ""}
    return {"value": kind.value, "label": label(kind), "hint": kind.description}


def _checklist(detail: CaseDetail) -> list[dict[str, Any]] | None:
    """One row per item: a claim's present or missing; a driver's item with where it
    stands (approved ones count as present) and its expiry date. None for a case type that
    keeps documents without a checklist (an unpaid invoice's PDF)."""
    if detail.type in _DRIVER_TYPES:
        return [
            _kind(item.kind)
            | {
                "present": item.status is ItemStatus.APPROVED,
                "state": item.status.value.replace("_", " "),
                "expires_on": item.expires_on,
                "reason": item.rejected_reason if item.status is ItemStatus.REQUESTED else None,
            }
            for item in driver_items(detail.type, detail.case_id, detail.details)
        ]
    checklist = detail.details.get("checklist")
    if checklist is None:
        return None
    return [
        _kind(value) | {"present": status == "present"}
        for value, status in (checklist.items() if isinstance(checklist, dict) else ())
    ]


def _evidence(detail: CaseDetail) -> dict[str, Any] | None:
    """The checklist and the documents (each with its console download link); None for a
    case type that holds no documents."""
    if not spec_for(detail.type).document_kinds:
        return None
    documents: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for doc in detail.documents:
        url = document_url(detail.case_id, str(doc["id"]))
        if doc.get("kind") == PACKAGE_KIND:
            documents.append({"label": _PACKAGE_LABEL, "hint": _PACKAGE_HINT, "url": url})
            continue
        kind = _kind(doc.get("kind"))
        seen[kind["value"]] = number = seen.get(kind["value"], 0) + 1
        shown = kind["label"] if number == 1 else f"{kind['label']} ({number})"  # 2nd photo
        documents.append({"label": shown, "hint": kind["hint"], "url": url})
    return {"checklist": _checklist(detail), "documents": documents}


def _reviews(detail: CaseDetail) -> list[dict[str, Any]]:
    """A review form's facts for each document in review."""
    return [
        _kind(item.kind)
        | {
            "document_id": item.document.id,
            "url": document_url(detail.case_id, item.document.id),
            "expires": item.expires,
            "received_at": item.received_at,
        }
        for item in in_review(detail)
        if item.document is not None
    ]


_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_ISO_DURATION = re.compile(r"^P(?=\d|T\d)(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
_DURATION = TypeAdapter(timedelta)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts) or "0 seconds"


def readable(value: Any, *, durations: bool = False) -> Any:
    """A case's details as a person reads them: JSON timestamps as `2026-05-01 14:00 UTC`,
    the policy snapshot's ISO 8601 durations as `3 days`, a list of plain values as one line;
    everything else as it is."""
    if isinstance(value, dict):
        return {
            key: readable(inner, durations=durations or key == "policy")
            for key, inner in value.items()
        }
    if isinstance(value, list):
        items = [readable(inner, durations=durations) for inner in value]
        plain = all(not isinstance(item, dict | list) for item in items)
        return ", ".join(str(item) for item in items) if plain and items else items
    if not isinstance(value, str):
        return value
    if _ISO_DATETIME.match(value):
        try:
            return f"{datetime.fromisoformat(value).astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        except ValueError:
            return value
    if durations and _ISO_DURATION.match(value):
        return _duration(_DURATION.validate_python(value))
    return value


def _size(limit: int) -> str:
    return f"{limit / 1024 / 1024:.0f} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"


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
    form: Mapping[str, str] | None = None,
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
    allowed = [
        name
        for name, action in type_actions.items()
        if user.can_act
        and name in detail.allowed_actions
        and user.key.role.allows(action.spec.role)  # a write-off is for admins
    ]
    actions = {name: type_actions[name] for name in allowed}
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
    drivers: list[Any] = []
    if "failed-attempt" in actions:
        drivers = (await list_drivers(session=reader.session, _=user.key, page=ALL)).items
    evidence = _evidence(detail)
    details = readable(detail.details)
    if evidence is not None:
        details = {k: v for k, v in details.items() if k not in _EVIDENCE_KEYS}
    context = {
        "user": user,
        "case": detail,
        "details": details,
        "evidence": evidence,
        "missing": [row for row in evidence["checklist"] or () if not row["present"]]
        if evidence
        else [],
        "messages": messages,  # oldest first, like the timeline
        "actions": actions,
        "flash": type_actions[done].done if done in type_actions else None,
        "error": error,
        "failed": failed,
        "form": form or {},
        "now": reader.now,
        "pickup_points": pickup_points,
        "country": country,
        "drivers": drivers,
        "options": list(RedeliveryOption),
        "windows": list(TimeWindow),
        "outcomes": list(DeliveryOutcome),
        "reasons": list(FailureReason),
        "kinds": [_kind(kind) for kind in spec_for(detail.type).document_kinds],
        "upload_kinds": [
            _kind(kind) | {"types": file_types(kind)}
            for kind in (actions["documents"].choices(detail) if "documents" in actions else ())
        ],
        "reviews": _reviews(detail) if "review" in actions else [],
        "max_size": _size(reader.settings.max_upload_bytes),
        "decisions": list(ClaimDecision),
    }
    return render(request, "case.html", context, status)


def _done(case: CaseRef, action: str) -> Response:
    return see_other(f"{case_url(case.case_id)}?{urlencode({'done': action})}")


@router.get("/cases/{case_id}", **router_options)
async def case_page(
    request: Request, user: User, case: CurrentCase, reader: Reader, done: str | None = None
) -> HTMLResponse:
    return await _case_page(request, user, case, CaseAction(case, reader), done=done)


@router.get(
    "/cases/{case_id}/documents/{document_id}", response_class=Response, include_in_schema=False
)
async def case_document(
    document_id: str, user: User, case: CurrentCase, reader: Reader, store: DocumentsDep
) -> Response:
    """A document of the case for a console session (any role): the JSON route's download,
    headers and all (an attachment, sandboxed, never sniffed)."""
    return await download_document(document_id, user.key, case, reader, store)


@router.post("/cases/{case_id}/{action}", **router_options)
async def case_action(
    action: str,
    request: Request,
    user: User,
    settings: SettingsDep,
    case: CurrentCase,
    reader: Reader,
    store: DocumentsDep,
) -> Response:
    type_spec = spec_for_case_id(case.case_id)
    uploading = is_upload(type_spec.action(action) if type_spec else None)
    if uploading:
        # The CSRF token travels in the multipart body, which only the upload code reads
        # (capped): the origin now, the token before anything is stored (`_upload`).
        check_origin(request, settings)
        form: dict[str, str] = {}
    else:
        form = await posted_form(request, user, settings)
    if not any(spec.action(action) for spec in CASE_TYPES.values()):
        raise Problem(404, f"no such action: {action}")
    require_ops(user)
    type_actions = actions_for(require_action(case.case_id, action).case_type)
    if action not in type_actions:
        raise Problem(404, f"the console has no form for '{action}'")
    spec, act = type_actions[action], CaseAction(case, reader)
    if spec.uploads:
        return await _upload(request, user, spec, act, store)
    try:
        body = spec.model.model_validate(spec.payload(form, reader.now))
        await spec.run(body, user.key, act, form)
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
    return _done(case, action)


async def _upload(
    request: Request, user: ConsoleUser, action: Action, act: CaseAction, store: DocumentStore
) -> Response:
    """An upload form, through the JSON route's own upload code: 409 and 413 before the
    body is read, the CSRF token checked before anything is stored, 422 for what the kind
    does not accept; each refusal is the case page again with the reason."""
    name = action.spec.name
    fields: dict[str, str] = {}

    def check(posted: Mapping[str, str]) -> None:
        check_csrf(posted, user)
        fields.update((k, v) for k, v in posted.items() if k != CSRF_FIELD)  # to show again

    try:
        await action.upload(request, user.key, act, store, check)
    except HTTPException:  # a malformed multipart body
        message = "The upload could not be read; choose the file and send it again."
        return await _case_page(
            request, user, act.case, act, error=message, failed=name, status=400
        )
    except Problem as problem:
        if problem.status not in (409, 413, 422):
            raise
        return await _case_page(
            request,
            user,
            act.case,
            act,
            error=problem.detail,
            failed=name,
            form=fields,
            status=problem.status,
        )
    return _done(act.case, name)
