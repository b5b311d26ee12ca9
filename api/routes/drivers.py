"""Drivers: name, contact, depot and status."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.deps import AdminKey, PageDep, SessionDep, ViewerKey
from api.errors import Problem, invalid
from api.listing import paginate
from api.models import DriverCreate, DriverOut, Page
from schemas.tables import Depot, Driver

router = APIRouter(prefix="/drivers", tags=["reference data"])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a driver")
async def create_driver(body: DriverCreate, session: SessionDep, _: AdminKey) -> DriverOut:
    if await session.get(Depot, body.depot_id) is None:
        raise invalid("depot_id", f"unknown depot '{body.depot_id}'")
    if await session.get(Driver, body.id) is not None:
        raise Problem(409, f"driver '{body.id}' already exists")
    driver = Driver(**body.model_dump())
    session.add(driver)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Problem(409, f"driver '{body.id}' already exists") from None
    return DriverOut.model_validate(driver)


@router.get("", summary="List drivers")
async def list_drivers(
    session: SessionDep, _: ViewerKey, page: PageDep, depot_id: str | None = None
) -> Page[DriverOut]:
    statement = select(Driver).order_by(col(Driver.id))
    if depot_id:
        statement = statement.where(Driver.depot_id == depot_id)
    rows, total = await paginate(session, statement, page)
    return Page(
        items=[DriverOut.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{driver_id}", summary="One driver")
async def get_driver(driver_id: str, session: SessionDep, _: ViewerKey) -> DriverOut:
    driver = await session.get(Driver, driver_id)
    if driver is None:
        raise Problem(404, f"unknown driver '{driver_id}'")
    return DriverOut.model_validate(driver)
