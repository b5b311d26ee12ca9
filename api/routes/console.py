"""The ops console, `/console`: server-rendered pages, no JavaScript.

Every page calls the JSON routes' own functions (the list's filters, the case detail, the
actions and uploads, opening a case, document downloads), so the console can
do nothing the API would refuse and refuses it with the API's reason. Auth is a signed
session cookie made from a pasted API key (see `api.console.auth`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ValidationError
from sqlmodel import col, select
from starlette.exceptions import HTTPException
from temporalio.client import Client as TemporalClient

from api.case_models import CaseDetail, CaseSort
from api.casework import PACKAGE_KIND, CaseReader, Reader, require_action, settled
from api.console import display as console_display
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
    MINE,
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
from schemas.tables import ApiKey, Client, DeliveryRecord, Depot, Driver, Message, Shipment

router = APIRouter(prefix="/console", tags=["console"], route_class=ConsoleRoute)
router_options: dict[str, Any] = {"response_class": HTMLResponse, "include_in_schema": False}

PAGE_SIZE = 50
SETTLE_SECONDS = 2.0
"""How long the page after an action waits for what the action set going (`settled`)."""
OPENED, OPENED_FLASH = "opened", "Case opened."
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


SORTABLE = {
    "opened": (CaseSort.OPENED_DESC, CaseSort.OPENED),
    "deadline": (CaseSort.DEADLINE, CaseSort.DEADLINE_DESC),
    "updated": (CaseSort.UPDATED_DESC, CaseSort.UPDATED),
}
"""A sortable column's orders: the first click's, then the other way."""


async def zones(session: SessionDep) -> dict[str, dict[str, str]]:
    """The IANA zone of every depot and client, to show a case's times in its zone."""
    depots = (await session.exec(select(Depot.id, Depot.timezone))).all()
    clients = (await session.exec(select(Client.id, Client.timezone))).all()
    return {"depot": dict(depots), "client": dict(clients)}


def zone_of(known: Mapping[str, Mapping[str, str]], depot_id: Any, client_id: Any) -> str | None:
    """A case's zone: its depot's, else its client's (an unpaid invoice has no depot)."""
    if isinstance(depot_id, str) and depot_id in known["depot"]:
        return known["depot"][depot_id]
    if isinstance(client_id, str):
        return known["client"].get(client_id)
    return None


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
        depot_id=filters.depot_id,
        escalated=filters.escalated,
        overdue=filters.overdue,
        assignee=filters.assignee_for(user.key.name),
        deadline_before=filters.deadline_before,
        deadline_after=filters.deadline_after,
        q=filters.q,
        sort=filters.sort,
    )

    def page_link(offset: int) -> str:
        return "/console?" + urlencode(filters.query(offset=offset or None))

    def sort_link(column: str) -> dict[str, Any]:
        first, second = SORTABLE[column]
        current = filters.sort if filters.sort in (first, second) else None
        chosen = second if current is first else first
        query = filters.query(sort=None if chosen is CaseSort.OPENED_DESC else chosen, offset=None)
        arrow = {None: "", False: " ↑", True: " ↓"}[current.descending if current else None]
        return {"url": "/console?" + urlencode(query), "arrow": arrow, "sorted": current}

    depot_ids = (await session.exec(select(Depot.id).order_by(col(Depot.id)).limit(200))).all()
    known = await zones(session)
    context = {
        "user": user,
        "page": page,
        "filters": filters,
        "errors": errors,
        "types": list(CaseType),
        "statuses": list(CaseStatus),
        "depot_ids": depot_ids,
        "mine": MINE,
        "mine_link": "/console?" + urlencode({"assignee": MINE}),
        "sort_links": {column: sort_link(column) for column in SORTABLE},
        "zones": {c.case_id: zone_of(known, c.depot_id, c.client_id) for c in page.items},
        "temporal_views": temporal_views(
            settings,
            now,
            client_id=filters.client_id,
            case_type=filters.type,
            depot_ids=tuple(depot_ids[:20]),
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
    open: Callable[[Any, ApiKey, Response, TemporalClient, CaseReader], Awaitable[CaseDetail]]
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
        fields = {e["field"]: console_display.plain_error(e["field"], e["message"]) for e in errors}
        return await _open_form(request, user, reader.session, opening, form, fields, 422)
    except Problem as problem:
        if problem.status not in (409, 422):
            raise
        fields = {
            e["field"]: console_display.plain_error(e["field"], e["message"])
            for e in problem.errors or []
        } or {"": _sentence(problem.detail)}
        return await _open_form(request, user, reader.session, opening, form, fields, 422)
    return see_other(f"{case_url(detail.case_id)}?{urlencode({'done': OPENED})}")


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


@dataclass(frozen=True)
class Person:
    """One of the people (or places) a case concerns, as the sidebar shows them."""

    role: str
    name: str
    lines: tuple[str, ...] = ()
    link: str | None = None


def _masked_address(address: Mapping[str, Any]) -> str:
    parts = (address.get(k) for k in ("line1", "line2", "city", "postal_code", "country"))
    return ", ".join(str(part) for part in parts if part)


async def _people(detail: CaseDetail, reader: CaseReader, user: ConsoleUser) -> list[Person]:
    """Who and where the case concerns: the customer and address (shipment cases), the
    driver (the case's, or who made the last failed attempt), the client and the depot.
    Contact details are shown to those who act on cases (ops and admin), names to all."""
    session, contacts = reader.session, user.can_act
    people: list[Person] = []
    shipment_id = detail.details.get("shipment_id")
    shipment = await session.get(Shipment, shipment_id) if isinstance(shipment_id, str) else None
    if shipment is not None:
        lines = [_masked_address(shipment.address)]
        if contacts:
            lines += [shipment.customer_email, shipment.customer_phone or ""]
        people.append(Person("Customer", shipment.customer_name, tuple(filter(None, lines))))
    driver_id = detail.details.get("driver_id")
    if detail.type in _DRIVER_TYPES:
        driver_id = detail.business_key
    elif not isinstance(driver_id, str) and isinstance(shipment_id, str):
        last = await session.exec(
            select(DeliveryRecord.driver_id)
            .where(DeliveryRecord.shipment_id == shipment_id)
            .where(col(DeliveryRecord.driver_id).is_not(None))
            .order_by(col(DeliveryRecord.attempt_number).desc())
            .limit(1)
        )
        driver_id = last.first()
    driver = await session.get(Driver, driver_id) if isinstance(driver_id, str) else None
    if driver is not None:
        lines = [f"{driver.id} · {driver.status.value.replace('_', ' ')}"]
        if contacts:
            lines += [driver.email, driver.phone or ""]
        people.append(Person("Driver", driver.name, tuple(filter(None, lines))))
    client = await session.get(Client, detail.client_id) if detail.client_id else None
    if client is not None:
        hold = ("Dispatches on hold (unpaid invoice)",) if client.dispatch_hold else ()
        people.append(Person("Client", client.name, (client.id, *hold)))
    depot_id = detail.depot_id or detail.details.get("depot_id")
    depot = await session.get(Depot, depot_id) if isinstance(depot_id, str) else None
    if depot is not None:
        lines = [depot.address, f"Dispatcher: {depot.dispatcher_name}"]
        if contacts:
            lines += [depot.dispatcher_email, depot.dispatcher_phone or ""]
        people.append(Person("Depot", depot.name, tuple(filter(None, lines))))
    return people


async def _case_zone(detail: CaseDetail, reader: CaseReader) -> str | None:
    """The case's time zone: its depot's, else its client's."""
    depot_id = detail.depot_id or detail.details.get("depot_id")
    depot = await reader.session.get(Depot, depot_id) if isinstance(depot_id, str) else None
    if depot is not None:
        return depot.timezone
    client = await reader.session.get(Client, detail.client_id) if detail.client_id else None
    return client.timezone if client is not None else None


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
    case_zone = await _case_zone(detail, reader)
    raw = detail.details
    if evidence is not None:
        raw = {k: v for k, v in raw.items() if k not in _EVIDENCE_KEYS}
    context = {
        "user": user,
        "case": detail,
        "zone": case_zone,
        "people": await _people(detail, reader, user),
        "details": console_display.readable(raw, case_zone),
        "evidence": evidence,
        "missing": [row for row in evidence["checklist"] or () if not row["present"]]
        if evidence
        else [],
        "messages": messages,  # oldest first, like the timeline
        "actions": actions,
        "flash": OPENED_FLASH
        if done == OPENED
        else (type_actions[done].done if done in type_actions else None),
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
    if done:  # right after an action (or the opening): show what it set going
        await settled(case, limit=SETTLE_SECONDS)
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
        message = _sentences(field_errors(err.errors(), drop_location=False))
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
            error=_sentences(problem.errors) if problem.errors else _sentence(problem.detail),
            failed=action,
            form=form,
            status=problem.status,
        )
    return _done(case, action)


def _sentences(errors: Iterable[Mapping[str, str]]) -> str:
    """Field errors as sentences naming each field as its form labels it."""
    return " ".join(console_display.plain_error(e["field"], e["message"]) for e in errors)


def _sentence(text: str) -> str:
    return console_display.plain_error("", text)


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
