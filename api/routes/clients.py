"""Clients and their contacts (admin writes, viewers read)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.casework import run_update
from api.deps import AdminKey, CaseRef, PageDep, SessionDep, TemporalDep, TimeoutsDep, ViewerKey
from api.errors import Problem, from_validation_error, invalid
from api.listing import paginate
from api.models import (
    ClientCreate,
    ClientOut,
    ClientUpdate,
    ContactIn,
    ContactOut,
    DispatchHoldOut,
    Page,
    ReportingIn,
)
from api.report_models import reporting_out, resolve_contacts
from api.routes.invoicing import sync_schedule_quietly
from api.routes.reports import sync_report_schedules_quietly
from schemas import contracts
from schemas.case_types import CASE_TYPES, resolve_policy
from schemas.enums import CaseType
from schemas.invoices import HoldRelease
from schemas.reporting import ReportingSettings, reporting_of
from schemas.requests import ReleaseHoldIn
from schemas.tables import Client, ClientContact

router = APIRouter(prefix="/clients", tags=["reference data"])


def check_policy_overrides(overrides: dict[str, dict[str, object]]) -> None:
    """Every override must name a case type with a policy and resolve to a valid policy."""
    for key in overrides:
        try:
            case_type = CaseType(key)
        except ValueError:
            raise invalid(f"policy_overrides.{key}", "not a case type") from None
        if case_type not in CASE_TYPES:
            raise invalid(f"policy_overrides.{key}", "this case type has no policy")
        try:
            resolve_policy(case_type, overrides)
        except ValidationError as err:
            raise from_validation_error(err, prefix=f"policy_overrides.{key}") from None


def reporting_settings(
    body: ReportingIn, contacts: list[ClientContact], stored: ReportingSettings | None = None
) -> ReportingSettings:
    """The client's settings from a body: on PATCH the fields given change, the others
    stay; contacts given by id or email are kept as ids (422 naming the item otherwise)."""
    given = body.model_dump(exclude_unset=True) if stored else body.model_dump()
    if "contacts" in given:
        given["contacts"] = resolve_contacts(body.contacts, contacts)
    base = stored.model_dump() if stored else {}
    return ReportingSettings.model_validate({**base, **given})


async def _contacts(session: SessionDep, client_id: str) -> list[ClientContact]:
    rows = await session.exec(
        select(ClientContact)
        .where(ClientContact.client_id == client_id)
        .order_by(col(ClientContact.kind), col(ClientContact.name))
    )
    return list(rows.all())


async def _client_out(session: SessionDep, client: Client) -> ClientOut:
    contacts = await _contacts(session, client.id)
    return ClientOut(
        id=client.id,
        name=client.name,
        timezone=client.timezone,
        contacts=[ContactOut.model_validate(c) for c in contacts],
        reporting=reporting_out(reporting_of(client.reporting), contacts),
        policy_overrides=client.policy_overrides,
        created_at=client.created_at,
        dispatch_hold=DispatchHoldOut(
            reason=client.dispatch_hold_reason,
            case_id=client.dispatch_hold_case_id,
            since=client.dispatch_hold_since,
        )
        if client.dispatch_hold
        else None,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a client",
    description="With its contacts and, optionally, its `reporting`: which reports it gets "
    "(`daily`, `weekly`), at what local `hour` (0-23, default 7) and to which of its "
    "`reporting` contacts (`contacts`, each by email, as given here; empty: all of them).",
)
async def create_client(
    body: ClientCreate, session: SessionDep, _: AdminKey, request: Request
) -> ClientOut:
    check_policy_overrides(body.policy_overrides)
    if await session.get(Client, body.id) is not None:
        raise Problem(409, f"client '{body.id}' already exists")
    contacts = [ClientContact(client_id=body.id, **c.model_dump()) for c in body.contacts]
    settings = reporting_settings(body.reporting, contacts) if body.reporting else None
    client = Client(
        id=body.id,
        name=body.name,
        timezone=body.timezone,
        policy_overrides=body.policy_overrides,
        reporting=settings.model_dump(mode="json") if settings else {},
    )
    session.add(client)
    try:
        await session.flush()
        session.add_all(contacts)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Problem(409, f"client '{body.id}' already exists") from None
    if settings and (settings.daily or settings.weekly):
        await sync_report_schedules_quietly(request, body.id)
    return await _client_out(session, client)


@router.get("", summary="List clients")
async def list_clients(session: SessionDep, _: ViewerKey, page: PageDep) -> Page[ClientOut]:
    rows, total = await paginate(session, select(Client).order_by(col(Client.id)), page)
    items = [await _client_out(session, row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{client_id}", summary="One client with its contacts and any dispatch hold")
async def get_client(client_id: str, session: SessionDep, _: ViewerKey) -> ClientOut:
    client = await session.get(Client, client_id)
    if client is None:
        raise Problem(404, f"unknown client '{client_id}'")
    return await _client_out(session, client)


@router.patch(
    "/{client_id}",
    summary="Change a client's name, time zone or reporting (admin)",
    description="Only the fields given change (within `reporting` too). The time zone dates "
    "the client's stops for billing and reports: changing it moves stops near midnight into "
    "another day (and maybe another billing period or rate agreement) for every invoice not "
    "yet issued, and moves its schedules. `reporting` turns the daily and weekly reports on "
    "or off (their schedules are created or deleted), sets their local `hour` and lists the "
    "`reporting` contacts they go to (by id or email; 422 naming the item for any other).",
)
async def update_client(
    client_id: str, body: ClientUpdate, session: SessionDep, _: AdminKey, request: Request
) -> ClientOut:
    client = await session.get(Client, client_id)
    if client is None:
        raise Problem(404, f"unknown client '{client_id}'")
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise invalid("body", "nothing to change: give name, timezone or reporting")
    if body.reporting is not None:
        settings = reporting_settings(
            body.reporting, await _contacts(session, client_id), reporting_of(client.reporting)
        )
        changes["reporting"] = settings.model_dump(mode="json")
    await session.exec(update(Client).where(col(Client.id) == client_id).values(**changes))
    await session.commit()
    await session.refresh(client)
    if "timezone" in changes:  # its invoicing schedule runs at 02:00 in this zone
        await sync_schedule_quietly(request, client_id)
    if "timezone" in changes or "reporting" in changes:  # reports at its hour in its zone
        await sync_report_schedules_quietly(request, client_id)
    return await _client_out(session, client)


@router.post(
    "/{client_id}/contacts",
    status_code=status.HTTP_201_CREATED,
    summary="Add a contact to a client (admin)",
    description="A contact of any kind, e.g. a `reporting` contact: the client's reports go "
    "to every reporting contact unless its `reporting.contacts` lists some. Answers the "
    "client.",
)
async def add_contact(
    client_id: str, body: ContactIn, session: SessionDep, _: AdminKey
) -> ClientOut:
    client = await session.get(Client, client_id)
    if client is None:
        raise Problem(404, f"unknown client '{client_id}'")
    session.add(ClientContact(client_id=client_id, **body.model_dump()))
    await session.commit()
    return await _client_out(session, client)


@router.post(
    "/{client_id}/release-hold",
    summary="Lift the client's dispatch hold (admin)",
    description="Lifts the hold an unpaid-invoice case set, whatever the invoice's state: the "
    "case records it on its timeline, tells the dispatchers it told of the hold and the "
    "account manager, and goes on chasing the balance. A hold whose case has finished is "
    "cleared on the client directly. Releasing a client without a hold changes nothing. "
    "Answers the client.",
)
async def release_hold(
    client_id: str,
    session: SessionDep,
    key: AdminKey,
    temporal: TemporalDep,
    timeouts: TimeoutsDep,
    body: ReleaseHoldIn | None = None,
) -> ClientOut:
    client = await session.get(Client, client_id)
    if client is None:
        raise Problem(404, f"unknown client '{client_id}'")
    if client.dispatch_hold and client.dispatch_hold_case_id:
        release = HoldRelease(
            reason=body.reason if body else "released by an admin", by=f"admin:{key.name}"
        )
        case = CaseRef(case_id=client.dispatch_hold_case_id, row=None, client=temporal)
        try:
            await run_update(case, contracts.RELEASE_HOLD, release, timeouts, refresh=False)
        except Problem as problem:
            # The case has finished (409 closed, 404 gone) or holds nothing any more (409):
            # nobody else writes this hold now, so clear it here.
            if problem.status not in (404, 409):
                raise
    # Whatever the case did, the hold is off the client now (the case clears only its own).
    await session.exec(
        update(Client)
        .where(col(Client.id) == client_id)
        .values(
            dispatch_hold=False,
            dispatch_hold_reason=None,
            dispatch_hold_case_id=None,
            dispatch_hold_since=None,
        )
    )
    await session.commit()
    await session.refresh(client)
    return await _client_out(session, client)
