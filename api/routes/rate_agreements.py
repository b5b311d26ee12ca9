"""A client's rate agreement and its history: `PUT /clients/{id}/rate-agreement` (admin) puts
a version in force from its `effective_from`; `GET /clients/{id}/rate-agreement` (viewer) is
the version in force today or `?on=` another day; `GET /clients/{id}/rate-agreements` is every
version.

Versions are never deleted. The same `effective_from` again with the same terms changes
nothing (200); with other terms it replaces that version while the version is not yet in force
(its date is after today in the client's time zone: no stop can have been priced by it), and
is a 409 once it is (put a new version from a later date instead: history stays as it was)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import update
from sqlmodel import col, select

from api.deps import AdminKey, Now, SessionDep, ViewerKey
from api.errors import Problem
from api.routes.invoicing import sync_schedule_quietly
from core.sql import insert_ignore
from schemas.enums import BillingCycle
from schemas.pricing import agreement_on
from schemas.rates import RateAgreement
from schemas.tables import Client, RateAgreementVersion

router = APIRouter(prefix="/clients", tags=["rate agreements"])

VersionStatus = Literal["superseded", "in_force", "scheduled"]


class RateAgreementOut(BaseModel):
    """One version; money as decimal strings with the currency's minor units."""

    client_id: str
    effective_from: dt.date
    effective_to: dt.date | None = Field(
        description="The last day it prices (the day before the next version); null while "
        "it is the latest."
    )
    status: VersionStatus = Field(
        description="`in_force` today in the client's time zone, `scheduled` from a later "
        "date, `superseded` by a later version already in force."
    )
    currency: str
    base_rate_per_stop: str
    zone_rates: dict[str, str]
    residential_surcharge: str
    failed_attempt_fee: str
    minimum_charge_per_invoice: str
    tax_rate: str
    billing_cycle: BillingCycle
    payment_terms_days: int
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime | None
    updated_by: str | None


class RateAgreementHistory(BaseModel):
    client_id: str
    timezone: str
    today: dt.date = Field(description="Today in the client's time zone.")
    items: list[RateAgreementOut] = Field(description="Every version, oldest first.")


def _today(client: Client, now: dt.datetime) -> dt.date:
    return now.astimezone(ZoneInfo(client.timezone)).date()


async def _client(session: SessionDep, client_id: str) -> Client:
    client = await session.get(Client, client_id)
    if client is None:
        raise Problem(404, f"unknown client '{client_id}'")
    return client


async def _versions(session: SessionDep, client_id: str) -> list[RateAgreementVersion]:
    rows = await session.exec(
        select(RateAgreementVersion)
        .where(RateAgreementVersion.client_id == client_id)
        .order_by(col(RateAgreementVersion.effective_from))
    )
    return list(rows.all())


def _agreement(row: RateAgreementVersion) -> RateAgreement:
    return RateAgreement.model_validate(row, from_attributes=True)


def _out(
    row: RateAgreementVersion, versions: list[RateAgreementVersion], today: dt.date
) -> RateAgreementOut:
    later = [v.effective_from for v in versions if v.effective_from > row.effective_from]
    effective_to = min(later) - dt.timedelta(days=1) if later else None
    in_force = agreement_on([_agreement(v) for v in versions], today)
    state: VersionStatus
    if row.effective_from > today:
        state = "scheduled"
    elif in_force is not None and in_force.effective_from == row.effective_from:
        state = "in_force"
    else:
        state = "superseded"
    terms = _agreement(row)
    return RateAgreementOut(
        client_id=row.client_id,
        effective_from=row.effective_from,
        effective_to=effective_to,
        status=state,
        currency=terms.currency,
        base_rate_per_stop=format(terms.base_rate_per_stop, "f"),
        zone_rates={zone: format(amount, "f") for zone, amount in terms.zone_rates.items()},
        residential_surcharge=format(terms.residential_surcharge, "f"),
        failed_attempt_fee=format(terms.failed_attempt_fee, "f"),
        minimum_charge_per_invoice=format(terms.minimum_charge_per_invoice, "f"),
        tax_rate=format(terms.tax_rate, "f"),
        billing_cycle=terms.billing_cycle,
        payment_terms_days=terms.payment_terms_days,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def _columns(body: RateAgreement) -> dict[str, object]:
    """The version's terms as the table stores them (zone rates as decimal strings)."""
    terms = body.model_dump(exclude={"effective_from", "zone_rates"})
    terms["zone_rates"] = {zone: format(amount, "f") for zone, amount in body.zone_rates.items()}
    return terms


async def _answer(
    session: SessionDep, client: Client, effective_from: dt.date, now: dt.datetime
) -> RateAgreementOut:
    versions = await _versions(session, client.id)
    [row] = [v for v in versions if v.effective_from == effective_from]
    return _out(row, versions, _today(client, now))


@router.put(
    "/{client_id}/rate-agreement",
    summary="Put a version of the client's rate agreement (admin)",
    description="In force from `effective_from` (a date in the client's time zone) until the "
    "next version's; every stop is priced by the version in force on its own date. Money is "
    "a decimal string (a JSON number is a 422 naming the field) with no more decimals than "
    "the currency has, never negative; `tax_rate` a decimal string from 0 to 1. A new date "
    "is a new version (201). The same date again: the same terms change nothing (200); other "
    "terms replace a version not yet in force (200) and are a 409 for one already in force "
    "(stops may have been priced by it: put a new version from a later date).",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "The version already had these terms, or was replaced."},
        404: {"description": "Unknown client."},
        409: {"description": "A version already in force from that date has other terms."},
    },
)
async def put_rate_agreement(
    client_id: str,
    body: RateAgreement,
    session: SessionDep,
    key: AdminKey,
    now: Now,
    response: Response,
    request: Request,
) -> RateAgreementOut:
    answer = await _put_version(client_id, body, session, key, now, response)
    # The client's invoicing schedule follows the cycle of the version in force today.
    await sync_schedule_quietly(request, client_id)
    return answer


async def _put_version(
    client_id: str,
    body: RateAgreement,
    session: SessionDep,
    key: AdminKey,
    now: dt.datetime,
    response: Response,
) -> RateAgreementOut:
    client = await _client(session, client_id)
    who = f"admin:{key.name}"
    # One atomic statement decides whether the date is new, whoever else puts one now.
    inserted = await session.exec(
        insert_ignore(session, RateAgreementVersion, "client_id", "effective_from")
        .values(
            id=uuid.uuid4(),
            client_id=client.id,
            effective_from=body.effective_from,
            created_at=now,
            created_by=who,
            **_columns(body),
        )
        .execution_options(preserve_rowcount=True)  # else -1 with psycopg
    )
    location = f"/clients/{client.id}/rate-agreement?on={body.effective_from.isoformat()}"
    if inserted.rowcount:
        await session.commit()
        response.headers["Location"] = location
        return await _answer(session, client, body.effective_from, now)

    response.status_code = status.HTTP_200_OK
    existing = (
        await session.exec(
            select(RateAgreementVersion).where(
                RateAgreementVersion.client_id == client.id,
                RateAgreementVersion.effective_from == body.effective_from,
            )
        )
    ).one()
    if _agreement(existing).terms() == body.terms():
        return await _answer(session, client, body.effective_from, now)
    today = _today(client, now)
    since = body.effective_from.isoformat()
    refusal = Problem(
        409,
        f"the version from {since} is in force (today is {today.isoformat()} for this "
        "client): stops may have been priced by it, so its terms stay; put a new version "
        "with a later effective_from",
        slug="agreement-in-force",
    )
    if existing.effective_from <= today:
        raise refusal
    replaced = await session.exec(
        update(RateAgreementVersion)
        .where(
            col(RateAgreementVersion.id) == existing.id,
            # Only while not yet in force: the check and the write are one statement.
            col(RateAgreementVersion.effective_from) > today,
        )
        .values(updated_at=now, updated_by=who, **_columns(body))
        .execution_options(preserve_rowcount=True)
    )
    if not replaced.rowcount:
        raise refusal
    await session.commit()
    response.headers["Location"] = location
    return await _answer(session, client, body.effective_from, now)


@router.get(
    "/{client_id}/rate-agreement",
    summary="The client's rate agreement in force today, or on another day",
    responses={404: {"description": "Unknown client, or no version in force on that day."}},
)
async def get_rate_agreement(
    client_id: str,
    session: SessionDep,
    _: ViewerKey,
    now: Now,
    on: Annotated[
        dt.date | None,
        Query(description="A day (YYYY-MM-DD) in the client's time zone; default today."),
    ] = None,
) -> RateAgreementOut:
    client = await _client(session, client_id)
    day = on or _today(client, now)
    versions = await _versions(session, client.id)
    in_force = [v for v in versions if v.effective_from <= day]
    if not in_force:
        first = f"; its first version starts on {versions[0].effective_from}" if versions else ""
        raise Problem(
            404,
            f"client '{client.id}' has no rate agreement in force on {day.isoformat()}{first}",
            slug="no-rate-agreement",
        )
    return _out(in_force[-1], versions, _today(client, now))


@router.get(
    "/{client_id}/rate-agreements",
    summary="Every version of the client's rate agreement",
    responses={404: {"description": "Unknown client."}},
)
async def list_rate_agreements(
    client_id: str, session: SessionDep, _: ViewerKey, now: Now
) -> RateAgreementHistory:
    client = await _client(session, client_id)
    today = _today(client, now)
    versions = await _versions(session, client.id)
    return RateAgreementHistory(
        client_id=client.id,
        timezone=client.timezone,
        today=today,
        items=[_out(row, versions, today) for row in versions],
    )
