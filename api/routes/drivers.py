"""Drivers: the record (name, contact, depot, status, vehicle, planned start), its documents
as the driver cases record them, its cases, and offboarding.

The driver cases own the record's status while they run (onboarding → active, suspended,
abandoned, withdrawn, offboarded). `POST /drivers/{id}/offboard` ends them: the compliance
watch is offboarded, an onboarding still open is withdrawn; the record ends `offboarded`."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from api.casework import run_update
from api.deps import (
    AdminKey,
    CaseRef,
    OpsKey,
    PageDep,
    SessionDep,
    TemporalDep,
    Timeouts,
    TimeoutsDep,
    ViewerKey,
    workflow_status,
)
from api.errors import Problem, invalid, problem_from_temporal, temporal_call, update_unconfirmed
from api.listing import paginate
from api.models import (
    DriverCaseOut,
    DriverCreate,
    DriverDetail,
    DriverDocumentOut,
    DriverOut,
    Page,
)
from schemas import contracts
from schemas.case_types import DRIVER_COMPLIANCE, DRIVER_ONBOARDING
from schemas.cases import CancelInput
from schemas.contracts import UpdateContract
from schemas.enums import DriverStatus
from schemas.onboarding import ItemStatus, OffboardInput
from schemas.requests import OffboardIn
from schemas.tables import Case, Depot, Driver, DriverDocument

router = APIRouter(prefix="/drivers", tags=["drivers"])

DRIVER_CASE_TYPES = (DRIVER_ONBOARDING.case_type, DRIVER_COMPLIANCE.case_type)


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


def _expiring_before(day: dt.date) -> Any:
    """The drivers whose current approved document of some kind (the one expiring last:
    a renewal replaces the old one) expires before `day`."""
    current = (
        select(
            col(DriverDocument.driver_id).label("driver_id"),
            func.max(DriverDocument.expires_on).label("expires_on"),
        )
        .where(
            col(DriverDocument.status) == ItemStatus.APPROVED,
            col(DriverDocument.expires_on).is_not(None),
        )
        .group_by(col(DriverDocument.driver_id), col(DriverDocument.kind))
        .subquery()
    )
    return select(current.c.driver_id).where(current.c.expires_on < day)


@router.get(
    "",
    summary="List drivers",
    description="Filters: `status`, `depot_id`, and `expiring_before` (a date: drivers with "
    "an approved document, the current one of its kind, expiring before it).",
)
async def list_drivers(
    session: SessionDep,
    _: ViewerKey,
    page: PageDep,
    depot_id: str | None = None,
    driver_status: Annotated[DriverStatus | None, Query(alias="status")] = None,
    expiring_before: dt.date | None = None,
) -> Page[DriverOut]:
    statement = select(Driver).order_by(col(Driver.id))
    if depot_id:
        statement = statement.where(Driver.depot_id == depot_id)
    if driver_status:
        statement = statement.where(Driver.status == driver_status)
    if expiring_before:
        statement = statement.where(col(Driver.id).in_(_expiring_before(expiring_before)))
    rows, total = await paginate(session, statement, page)
    return Page(
        items=[DriverOut.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


async def driver_detail(session: SessionDep, driver_id: str) -> DriverDetail:
    """The record with its documents and cases; 404 for an unknown driver."""
    driver = await session.get(Driver, driver_id, populate_existing=True)
    if driver is None:
        raise Problem(404, f"unknown driver '{driver_id}'")
    documents = await session.exec(
        select(DriverDocument)
        .where(DriverDocument.driver_id == driver_id)
        .order_by(col(DriverDocument.updated_at), col(DriverDocument.document_id))
    )
    rows = await session.exec(
        select(Case)
        .where(Case.business_key == driver_id, col(Case.type).in_(DRIVER_CASE_TYPES))
        .order_by(col(Case.opened_at).desc(), col(Case.id))
    )
    cases = [DriverCaseOut.model_validate(row) for row in rows.all()]
    return DriverDetail(
        **DriverOut.model_validate(driver).model_dump(),
        documents=[DriverDocumentOut.model_validate(doc) for doc in documents.all()],
        open_case=next((c for c in cases if not c.status.is_terminal), None),
        cases=cases,
    )


@router.get(
    "/{driver_id}",
    summary="One driver: status, vehicle, documents (status, expiry) and open case",
)
async def get_driver(driver_id: str, session: SessionDep, _: ViewerKey) -> DriverDetail:
    return await driver_detail(session, driver_id)


# --- offboarding ----------------------------------------------------------------------------


async def _running(case: CaseRef) -> bool:
    try:
        return await workflow_status(case.client, case.case_id) == WorkflowExecutionStatus.RUNNING
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise (problem_from_temporal(err) or err) from None


async def _closed(case: CaseRef, timeouts: Timeouts) -> None:
    """Wait for the case's run to end (it is closing: cancelled or offboarded)."""
    try:
        with temporal_call():
            await asyncio.wait_for(case.handle.result(), timeouts.update.total_seconds())
    except WorkflowFailureError:  # ended anyway; its record says how
        return
    except TimeoutError:
        raise update_unconfirmed() from None


async def _end(
    case: CaseRef, update: UpdateContract[Any], arg: BaseModel, timeouts: Timeouts
) -> None:
    """Send `update` to the case if it runs and wait until it has closed. A refusal means
    it is finishing by itself (an onboarding activating): wait for that instead."""
    if not await _running(case):
        return
    try:
        state = await run_update(case, update, arg, timeouts, refresh=False)
        if state.status.is_terminal:
            return
    except Problem as problem:
        if problem.status != 409:
            raise
    await _closed(case, timeouts)


@router.post(
    "/{driver_id}/offboard",
    summary="Offboard a driver",
    description="The driver leaves: the compliance watch (`driver-compliance-{id}`) ends, an "
    "onboarding case still open is withdrawn, and the record becomes `offboarded` (never "
    "routed or watched again). Answers with the driver once that is done. 404 for an "
    "unknown driver, 409 for one already offboarded.",
)
async def offboard_driver(
    driver_id: str,
    body: OffboardIn,
    key: OpsKey,
    session: SessionDep,
    temporal: TemporalDep,
    timeouts: TimeoutsDep,
) -> DriverDetail:
    driver = await session.get(Driver, driver_id)
    if driver is None:
        raise Problem(404, f"unknown driver '{driver_id}'")
    if driver.status is DriverStatus.OFFBOARDED:
        raise Problem(409, f"driver '{driver_id}' is already offboarded", slug="case-closed")
    by = f"ops:{key.name}"
    # The onboarding first: an activation under way starts the watch, which is ended next.
    onboarding = CaseRef(DRIVER_ONBOARDING.case_type.workflow_id(driver_id), None, temporal)
    withdrawal = CancelInput(reason=f"Offboarded: {body.reason}", by=by)
    await _end(onboarding, contracts.CANCEL, withdrawal, timeouts)
    watch = CaseRef(DRIVER_COMPLIANCE.case_type.workflow_id(driver_id), None, temporal)
    await _end(watch, contracts.OFFBOARD, OffboardInput(reason=body.reason, by=by), timeouts)
    # The cases have closed (a withdrawn onboarding leaves the record `withdrawn`); the record
    # ends offboarded, which a driver without any case gets here alone.
    await session.exec(
        update(Driver)
        .where(col(Driver.id) == driver_id, col(Driver.status) != DriverStatus.OFFBOARDED)
        .values(status=DriverStatus.OFFBOARDED, updated_at=dt.datetime.now(dt.UTC))
    )
    await session.commit()
    return await driver_detail(session, driver_id)
