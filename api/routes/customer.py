"""The pages behind signed links, `/r/{token}`: no login, no JavaScript.

The token is signed, names one purpose and expires with the customer's window; it names the
case and the attempt it answers. `reschedule` links show the reschedule form (here); upload
links show the upload form (`api/upload_page.py`) with their purpose's page: `claim-upload`
the claim's (`api/claim_page.py`), `driver-upload` a driver's (`api/driver_page.py`). A
tampered link gets a 400 page, an expired one 410; every other outcome is a page too, never
JSON or a stack trace: `CustomerPageRoute` (`api/pages.py`) turns whatever the shared code
raises (a `Problem`, a Temporal error, a bug) into the notice page with its status."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlmodel import col, select

from api import upload_page
from api.casework import details_as, query_state, run_update
from api.claim_page import CLAIM_PAGE
from api.console.display import plain_error
from api.deps import (
    CaseRef,
    DocumentsDep,
    Now,
    SessionDep,
    SettingsDep,
    TemporalDep,
    Timeouts,
    TimeoutsDep,
)
from api.driver_page import DRIVER_PAGE
from api.errors import Problem, field_errors
from api.pages import CustomerPageRoute, PageError, link_state, page_for
from api.pages import notice as _notice
from api.pages import render as _render
from api.upload_page import DocumentsPage
from core.security import InvalidToken, LinkClaims, verify_link_for
from schemas import contracts
from schemas.case_types import link_purposes
from schemas.cases import CaseState, FailedDeliveryDetails, RedeliveryChoice
from schemas.enums import CaseStatus, RedeliveryOption, TimeWindow
from schemas.tables import Client, Depot, PickupPoint, Shipment
from schemas.ui_text import zone as ui_zone

log = logging.getLogger("casedesk.api")

RESCHEDULE = contracts.RESCHEDULE_LINK  # the purpose the workflow signs its links with
PURPOSES = tuple(link_purposes())  # every purpose a case type declares in the registry
_EXPIRED = {
    RESCHEDULE: "The time to choose a new delivery has passed. Please contact the sender.",
    contracts.CLAIM_UPLOAD_LINK: "The time to send documents for this claim has passed. "
    "Please contact the sender.",
    contracts.DRIVER_UPLOAD_LINK: "The time to send documents through this link has passed. "
    "Please use the link in our latest email, or contact your depot.",
}
_INVALID_NEXT_STEP = (
    "This link is incomplete or was changed. Please open it again from our email (tap the "
    "button, or copy the whole address: a long link is easily cut short). If it still does "
    "not work, reply to the shop that sent your parcel and quote your shipment number."
)
# A driver's link expires with its case's deadline (abandonment, an expiry date): by then it
# has stopped working for good, which is what the driver needs to hear.
_EXPIRED_HEADING = {contracts.DRIVER_UPLOAD_LINK: "This link no longer works"}
UPLOAD_PAGES: dict[str, DocumentsPage] = {
    contracts.CLAIM_UPLOAD_LINK: CLAIM_PAGE,
    contracts.DRIVER_UPLOAD_LINK: DRIVER_PAGE,
}
"""The upload page of each upload link purpose."""
FORM_FIELDS = 20
FORM_PART_BYTES = 16 * 1024
_LONG_AGO = datetime(1970, 1, 2, tzinfo=UTC)  # checks signature and purpose, not expiry
_LABELS = {
    "option": "Your choice",
    "date": "Day",
    "window": "Time window",
    "pickup_point_id": "Pickup point",
    "neighbour_name": "Neighbour's name",
    "neighbour_address": "Neighbour's address",
    "address.line1": "Address line 1",
    "address.line2": "Address line 2",
    "address.city": "City",
    "address.postal_code": "Postal code",
    "instructions": "Instructions",
}


router = APIRouter(prefix="/r", tags=["customer pages"], route_class=CustomerPageRoute)


def _verify(settings: SettingsDep, token: str, now: datetime) -> LinkClaims:
    """The link's claims (its purpose says which page it opens); a 400 page when it is not a
    valid link for these pages, 410 when it has expired."""
    secret = settings.resolved_link_secret
    try:
        signed = verify_link_for(secret, token, purposes=PURPOSES, now=_LONG_AGO)
    except InvalidToken as err:
        log.info("customer link refused: %s", err.reason)
        raise PageError(400, "This link is not valid", _INVALID_NEXT_STEP) from None
    try:
        return verify_link_for(secret, token, purposes=PURPOSES, now=now)
    except InvalidToken:
        heading = _EXPIRED_HEADING.get(signed.purpose, "This link has expired")
        raise PageError(410, heading, _EXPIRED[signed.purpose]) from None


async def _state(temporal: TemporalDep, claims: LinkClaims, timeouts: Timeouts) -> CaseState:
    return await link_state(temporal, claims, timeouts)


async def _shop(session: SessionDep, state: CaseState) -> str | None:
    """The client (shop) the case is for, by name: every page says on whose behalf it asks."""
    client = await session.get(Client, state.client_id) if state.client_id else None
    return client.name if client else None


def _not_waiting(state: CaseState, attempt: int, now: datetime) -> PageError | None:
    """Why the form is not shown, or None when the case waits on this customer."""
    details = _details(state)
    current = details.attempt_number
    if state.status.is_terminal:
        outcome = state.resolution.description if state.resolution else state.status.description
        return PageError(409, "This delivery is finished", outcome, state)
    if attempt < current:
        message = "We tried to deliver again since this link was sent: please use our latest email."
        return PageError(409, "This link is out of date", message, state)
    if state.status is CaseStatus.RETURNING_TO_SENDER:
        message = "We could not arrange a new delivery, so the parcel is returning to the sender."
        return PageError(409, "Your parcel is going back to the sender", message, state)
    if "redelivery" in state.allowed_actions:
        return None
    if state.status in (CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.REDELIVERY_SCHEDULED):
        booked = details.redelivery
        message = f"Your delivery is booked: {booked}." if booked else "We are booking it now."
        until = details.changeable_until
        if booked and until is not None:
            message += (
                " We are booking your change now and will email you a confirmation."
                if until > now
                else " It can no longer be changed: the depot is planning the route."
            )
        return PageError(409, "You have already answered", message, state)
    message = "We are still processing your delivery. Please try again in a minute."
    return PageError(409, "Please try again shortly", message, state)


def _details(state: CaseState) -> FailedDeliveryDetails:
    return details_as(FailedDeliveryDetails, state.case_id, state.details)


def _day(day: date) -> str:
    """The one date format of the customer's pages: "Saturday 5 December"."""
    return f"{day:%A} {day.day} {day:%B}"


def masked_address(address: dict[str, Any]) -> str:
    """The address on file, enough for its owner to recognise and for nobody else to learn:
    house numbers and the town kept, street words to their first letter, the postcode's
    inward part hidden ("12 H… S…, Leeds, LS1 •••")."""
    words = str(address.get("line1") or "").split()
    street = " ".join(w if any(c.isdigit() for c in w) else f"{w[0]}…" for w in words)
    postcode = str(address.get("postal_code") or "").split()
    hidden = (
        f"{postcode[0]} •••" if len(postcode) > 1 else (f"{postcode[0][:2]}•••" if postcode else "")
    )
    return ", ".join(part for part in (street, str(address.get("city") or ""), hidden) if part)


def _window_label(window: TimeWindow) -> str:
    start, end = window.hours
    return f"{window.value.capitalize()} ({start:02d}:00–{end:02d}:00)"


def _local(at: datetime, zone: tzinfo) -> str:
    """A time on the customer's pages: "Saturday 5 December, 18:00 GMT"."""
    local = at.astimezone(zone)
    return f"{_day(local.date())}, {local:%H:%M} {local.tzname() or 'UTC'}"


_PREFILLED = ("option", "date", "window", "pickup_point_id")
"""What the change form starts from: the booked choice's option and times or pickup point;
never a neighbour's name or address, which the link would show to whoever holds it."""


def _booked_fields(plan: dict[str, Any] | None) -> dict[str, str]:
    choice = (plan or {}).get("choice") or {}
    return {name: str(choice[name]) for name in _PREFILLED if choice.get(name)}


def _horizon(state: CaseState) -> int:
    """Days ahead a redelivery may be booked: the case's policy snapshot (in its details)."""
    policy = _details(state).policy
    return max(1, int(policy.redelivery_horizon / timedelta(days=1)))


async def _form_page(
    request: Request,
    session: SessionDep,
    state: CaseState,
    claims: LinkClaims,
    now: datetime,
    form: dict[str, str] | None = None,
    error: str | None = None,
) -> HTMLResponse:
    details = _details(state)
    depot = await session.get(Depot, details.depot_id)
    zone = ui_zone(depot.timezone if depot else None)
    today = now.astimezone(zone).date()
    days = [today + timedelta(days=n) for n in range(1, _horizon(state) + 1)]
    points = await session.exec(
        select(PickupPoint)
        .where(PickupPoint.depot_id == details.depot_id)
        .order_by(col(PickupPoint.name))
    )
    shipment = await session.get(Shipment, state.business_key)
    respond_by = booked = change_until = None
    if state.status is CaseStatus.REDELIVERY_SCHEDULED:  # a change to the booking
        booked = details.redelivery
        change_until = _local(details.changeable_until, zone) if details.changeable_until else None
        if form is None and shipment is not None:
            form = _booked_fields(shipment.redelivery_plan)
    elif state.deadline_at:
        respond_by = _local(state.deadline_at, zone)
    context = {
        "booked": booked,
        "change_until": change_until,
        "shipment_id": state.business_key,
        "shop": await _shop(session, state),
        "address_on_file": masked_address(shipment.address) if shipment else None,
        "attempt": claims.data.get("attempt"),
        "respond_by": respond_by,
        "status_text": state.status.description,
        "dates": [{"value": d.isoformat(), "label": _day(d)} for d in days],
        "windows": [{"value": w.value, "label": _window_label(w)} for w in TimeWindow],
        "pickup_points": points.all(),
        "form": form or {},
        "error": error,
    }
    return _render(request, "reschedule_form.html", context, 422 if error else 200)


@router.get(
    "/{token}",
    response_class=HTMLResponse,
    summary="The page a signed link opens: reschedule a delivery, or send documents",
)
async def reschedule_page(
    token: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    now: Now,
    timeouts: TimeoutsDep,
) -> HTMLResponse:
    try:
        claims = _verify(settings, token, now)
        state = await _state(temporal, claims, timeouts)
        if claims.purpose in UPLOAD_PAGES:
            page = UPLOAD_PAGES[claims.purpose]
            shop = await _shop(session, state)
            return upload_page.upload_page(request, settings, state, claims, page, shop=shop)
        not_waiting = _not_waiting(state, int(claims.data.get("attempt", 0)), now)
    except PageError as err:
        return _notice(request, err)
    if not_waiting is not None:
        not_waiting.status = 200
        return _notice(request, not_waiting)
    return await _form_page(request, session, state, claims, now)


_PICK_ONE = "Please tick one of the four ways to receive your parcel."

_TYPED = (
    (RedeliveryOption.NEIGHBOUR, ("neighbour_name", "neighbour_address")),
    (RedeliveryOption.ADDRESS_CORRECTION, ("line1", "line2", "city", "postal_code")),
    (RedeliveryOption.PICKUP_POINT, ("pickup_point_id",)),
)
"""The options whose fields the customer types or picks: a filled one says which they meant."""


def _inferred_option(form: dict[str, str]) -> str | None:
    """The option posted; without one (its radio not ticked), the option whose fields were
    filled in, when exactly one was; else a day and window (their selects always post)."""
    if form.get("option"):
        return form["option"]
    filled = [option for option, names in _TYPED if any(form.get(n, "").strip() for n in names)]
    if len(filled) == 1:
        return filled[0].value
    if not filled and form.get("date") and form.get("window"):
        return RedeliveryOption.REDELIVERY_WINDOW.value
    return None


def _choice_payload(form: dict[str, str], country: str) -> dict[str, Any]:
    option = _inferred_option(form)
    fields: dict[str, tuple[str, ...]] = {
        RedeliveryOption.REDELIVERY_WINDOW.value: ("date", "window"),
        RedeliveryOption.PICKUP_POINT.value: ("pickup_point_id",),
        RedeliveryOption.NEIGHBOUR.value: ("neighbour_name", "neighbour_address"),
    }
    payload: dict[str, Any] = {"option": option, "instructions": form.get("instructions") or None}
    for name in fields.get(option or "", ()):
        payload[name] = form.get(name) or None
    if option == RedeliveryOption.ADDRESS_CORRECTION.value:
        address = {k: form.get(k) or None for k in ("line1", "line2", "city", "postal_code")}
        if any(address.values()):
            payload["address"] = {**address, "country": country}
    return payload


def _choice_text(choice: RedeliveryChoice, point: PickupPoint | None) -> str:
    if choice.option is RedeliveryOption.REDELIVERY_WINDOW and choice.date and choice.window:
        when = _window_label(choice.window).lower()
        return f"delivery on {_day(choice.date)}, in the {when}"
    if choice.option is RedeliveryOption.PICKUP_POINT and point is not None:
        return f"collection from {point.name}, {point.address}"
    if choice.option is RedeliveryOption.NEIGHBOUR:
        return f"leave it with {choice.neighbour_name} at {choice.neighbour_address}"
    where = choice.address.one_line() if choice.address else "your corrected address"
    return f"delivery to {where}"


def _confirmation(choice: RedeliveryChoice, point: PickupPoint | None, changed: bool) -> str:
    """What the customer is told once the case has their choice: the booking happens after
    this (and can fail), so nothing here says it is booked."""
    return (
        f"Thank you — we have your {'new ' if changed else ''}choice: "
        f"{_choice_text(choice, point)}. We are booking it now and will email you a confirmation."
    )


@router.post(
    "/{token}",
    response_class=HTMLResponse,
    summary="The answer: a reschedule choice (form), or a document (multipart)",
)
async def reschedule_answer(
    token: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    now: Now,
    timeouts: TimeoutsDep,
    store: DocumentsDep,
) -> HTMLResponse:
    try:
        claims = _verify(settings, token, now)
        state = await _state(temporal, claims, timeouts)
        if claims.purpose in UPLOAD_PAGES:
            page = UPLOAD_PAGES[claims.purpose]
            case = CaseRef(claims.case_id, None, temporal)
            shop = await _shop(session, state)
            return await upload_page.upload_answer(
                request, settings, state, claims, case, store, timeouts, page, shop=shop
            )
    except PageError as err:
        return _notice(request, err)
    # The reschedule form is a handful of short fields; no file belongs in it.
    raw = await request.form(max_files=0, max_fields=FORM_FIELDS, max_part_size=FORM_PART_BYTES)
    form = {k: v.strip() for k, v in raw.items() if isinstance(v, str)}
    shipment = await session.get(Shipment, state.business_key)
    country = (shipment.address.get("country") if shipment else None) or "US"
    attempt = int(claims.data.get("attempt", 0))

    async def again(message: str) -> HTMLResponse:
        return await _form_page(request, session, state, claims, now, form, message)

    try:
        choice = RedeliveryChoice.model_validate(
            {**_choice_payload(form, country), "attempt_number": attempt, "by": "customer"}
        )
    except ValidationError as err:
        problems = field_errors(err.errors(), drop_location=False)
        lines = [
            _PICK_ONE
            if p["field"] == "option"
            else plain_error(p["field"], p["message"], _LABELS.get(p["field"]))
            for p in problems
        ]
        return await again("Please check your answer. " + " ".join(lines))
    point = None
    if choice.option is RedeliveryOption.PICKUP_POINT:
        point = await session.get(PickupPoint, choice.pickup_point_id)
        if point is None or point.depot_id != _details(state).depot_id:
            return await again("Please choose one of the pickup points listed.")

    case = CaseRef(claims.case_id, None, temporal)
    try:
        await run_update(case, contracts.CHOOSE_REDELIVERY, choice, timeouts, refresh=False)
    except Problem as problem:
        if problem.status == 422:
            return await again(f"Please check your answer: {problem.detail}")
        if problem.status == 409:
            fresh = await query_state(case.handle, timeouts)
            refused = (_not_waiting(fresh, attempt, now) if fresh else None) or PageError(
                409, "You have already answered", "We already have your choice."
            )
            return _notice(request, refused)
        if problem.status == 503:
            message = "We could not save your choice just now. Please try again in a few minutes."
            return _notice(request, PageError(503, "Please try again shortly", message))
        return _notice(request, page_for(problem))  # 504: sent, not confirmed; may be applied
    changed = state.status is CaseStatus.REDELIVERY_SCHEDULED
    context = {
        "confirmation": _confirmation(choice, point, changed),
        "shipment_id": state.business_key,
    }
    return _render(request, "reschedule_done.html", context)
