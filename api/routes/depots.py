"""Depots (with the dispatcher on duty) and their pickup points."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.deps import AdminKey, PageDep, SessionDep, ViewerKey
from api.errors import Problem
from api.listing import paginate
from api.models import (
    DepotCreate,
    DepotOut,
    DispatcherOut,
    Page,
    PickupPointCreate,
    PickupPointOut,
)
from schemas.tables import Depot, PickupPoint

router = APIRouter(prefix="/depots", tags=["reference data"])


def _depot_out(depot: Depot) -> DepotOut:
    return DepotOut(
        id=depot.id,
        name=depot.name,
        address=depot.address,
        timezone=depot.timezone,
        dispatcher=DispatcherOut(
            name=depot.dispatcher_name,
            email=depot.dispatcher_email,
            phone=depot.dispatcher_phone,
        ),
    )


async def _depot(session: SessionDep, depot_id: str) -> Depot:
    depot = await session.get(Depot, depot_id)
    if depot is None:
        raise Problem(404, f"unknown depot '{depot_id}'")
    return depot


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a depot")
async def create_depot(body: DepotCreate, session: SessionDep, _: AdminKey) -> DepotOut:
    if await session.get(Depot, body.id) is not None:
        raise Problem(409, f"depot '{body.id}' already exists")
    depot = Depot(
        id=body.id,
        name=body.name,
        address=body.address,
        timezone=body.timezone,
        dispatcher_name=body.dispatcher.name,
        dispatcher_email=body.dispatcher.email,
        dispatcher_phone=body.dispatcher.phone,
    )
    session.add(depot)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Problem(409, f"depot '{body.id}' already exists") from None
    return _depot_out(depot)


@router.get("", summary="List depots")
async def list_depots(session: SessionDep, _: ViewerKey, page: PageDep) -> Page[DepotOut]:
    rows, total = await paginate(session, select(Depot).order_by(col(Depot.id)), page)
    return Page(
        items=[_depot_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{depot_id}", summary="One depot")
async def get_depot(depot_id: str, session: SessionDep, _: ViewerKey) -> DepotOut:
    return _depot_out(await _depot(session, depot_id))


@router.post(
    "/{depot_id}/pickup-points",
    status_code=status.HTTP_201_CREATED,
    summary="Add a pickup point to a depot",
)
async def create_pickup_point(
    depot_id: str, body: PickupPointCreate, session: SessionDep, _: AdminKey
) -> PickupPointOut:
    await _depot(session, depot_id)
    if await session.get(PickupPoint, body.id) is not None:
        raise Problem(409, f"pickup point '{body.id}' already exists")
    point = PickupPoint(depot_id=depot_id, **body.model_dump())
    session.add(point)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Problem(409, f"pickup point '{body.id}' already exists") from None
    return PickupPointOut.model_validate(point)


@router.get("/{depot_id}/pickup-points", summary="A depot's pickup points")
async def list_pickup_points(
    depot_id: str, session: SessionDep, _: ViewerKey, page: PageDep
) -> Page[PickupPointOut]:
    await _depot(session, depot_id)
    statement = (
        select(PickupPoint).where(PickupPoint.depot_id == depot_id).order_by(col(PickupPoint.id))
    )
    rows, total = await paginate(session, statement, page)
    return Page(
        items=[PickupPointOut.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
