"""`POST /cases/failed-deliveries`: open the case for a failed attempt, or hand a later
attempt of the same shipment to its open case. Workflow ID = `failed-delivery-{shipment_id}`,
so a repeat post can never start a second case."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import ValidationError

from api.case_models import CaseDetail
from api.casework import (
    CaseReader,
    Opening,
    Reader,
    detail_from_row,
    detail_from_temporal,
    details_as,
    open_case,
    query_state,
    run_update,
)
from api.deps import CaseRef, OpsKey, SessionDep, TemporalDep
from api.errors import Problem, invalid, invalid_fields, temporal_unreachable
from schemas import contracts
from schemas.case_types import FAILED_DELIVERY, resolve_policy
from schemas.cases import (
    DispatchHoldNotice,
    FailedAttempt,
    FailedAttemptReport,
    FailedDeliveryDetails,
    FailedDeliveryInput,
)
from schemas.enums import CaseType
from schemas.policies import event_time_problem
from schemas.requests import FailedDeliveryOpen
from schemas.tables import Case, Client, Depot, Driver

router = APIRouter(prefix="/cases", tags=["cases"])


async def _case_input(
    body: FailedDeliveryOpen, session: SessionDep, opened_by: str, now: datetime
) -> FailedDeliveryInput:
    """Check every reference before anything reaches Temporal (nothing half-applied)."""
    client = await session.get(Client, body.client_id)
    driver = await session.get(Driver, body.driver_id)
    errors = []
    if client is None:
        errors.append({"field": "client_id", "message": f"unknown client '{body.client_id}'"})
    if driver is None:
        errors.append({"field": "driver_id", "message": f"unknown driver '{body.driver_id}'"})
    if errors or client is None or driver is None:
        raise invalid_fields(errors)
    try:
        policy = resolve_policy(FAILED_DELIVERY.case_type, client.policy_overrides)
        claim_policy = resolve_policy(CaseType.DAMAGE_CLAIM, client.policy_overrides)
    except ValidationError:
        message = f"client '{client.id}' has an invalid policy override"
        raise invalid_fields([{"field": "client_id", "message": message}]) from None
    problem = event_time_problem(body.attempted_at, now, policy.attempt_max_age)
    if problem is not None:
        raise invalid("attempted_at", problem)
    depot = await session.get(Depot, driver.depot_id)
    return FailedDeliveryInput(
        shipment_id=body.shipment_id,
        client_id=client.id,
        depot_id=driver.depot_id,
        customer=body.customer,
        address=body.address,
        attempt=_attempt(body),
        client_dispatch_hold=DispatchHoldNotice(
            reason=client.dispatch_hold_reason or "dispatches on hold",
            case_id=client.dispatch_hold_case_id or "",
            since=client.dispatch_hold_since,
        )
        if client.dispatch_hold
        else None,
        policy=policy,
        claim_policy=claim_policy,
        timezone=depot.timezone if depot else "UTC",
        opened_by=opened_by,
    )


def _attempt(body: FailedDeliveryOpen) -> FailedAttempt:
    return FailedAttempt(
        attempt_number=body.attempt_number,
        reason=body.reason,
        driver_id=body.driver_id,
        attempted_at=body.attempted_at,
        note=body.note,
    )


@router.post(
    "/failed-deliveries",
    status_code=status.HTTP_201_CREATED,
    summary="Open a failed-delivery case (or add a later attempt to it)",
    responses={200: {"description": "The shipment already has a case; it is returned."}},
)
async def open_failed_delivery(
    body: FailedDeliveryOpen,
    key: OpsKey,
    response: Response,
    temporal: TemporalDep,
    reader: Reader,
) -> CaseDetail:
    by = f"ops:{key.name}"
    case_input = await _case_input(body, reader.session, by, reader.now)
    attempt = case_input.attempt
    opening = Opening(
        FAILED_DELIVERY,
        case_input,
        business_key=body.shipment_id,
        client_id=case_input.client_id,
        depot_id=case_input.depot_id,
        subject=f"Shipment {body.shipment_id}: attempt {attempt.attempt_number} failed "
        f"({attempt.reason.value.replace('_', ' ')})",
    )

    async def existing(case: CaseRef) -> CaseDetail:
        return await _existing_case(case, body, by, reader)

    return await open_case(
        opening, response=response, temporal=temporal, reader=reader, existing=existing
    )


async def _existing_case(
    case: CaseRef, body: FailedDeliveryOpen, by: str, reader: CaseReader
) -> CaseDetail:
    """The shipment has a case already: a later attempt goes to it; a repeat changes
    nothing; a new attempt for a closed case is refused (the shipment's case is over)."""
    state = await query_state(case.handle, reader.timeouts)
    if state is not None:
        details = details_as(FailedDeliveryDetails, case.case_id, state.details)
        current, terminal = details.attempt_number, state.status.is_terminal
    else:
        case.row = await reader.session.get(Case, case.case_id)
        if case.row is None and body.attempt_number <= 1:
            # Not indexed yet (no worker has run it): a repeat of the first attempt is
            # answered from what Temporal knows; only a later attempt needs the case itself.
            return await detail_from_temporal(
                reader.session, case, reader.settings, reader.now, reader.timeouts.query
            )
        if case.row is None:
            raise temporal_unreachable("the case did not answer in time; is the worker running?")
        current = details_as(FailedDeliveryDetails, case.case_id, case.row.details).attempt_number
        terminal = case.row.status.is_terminal
    if body.attempt_number <= current:
        if case.row is not None:  # the worker did not answer: don't ask (and wait) again
            return await detail_from_row(reader.session, case.row, reader.settings, reader.now)
        return await reader.detail(case, state)
    if terminal:
        raise Problem(
            409,
            f"case '{case.case_id}' is closed; attempt {body.attempt_number} cannot be added",
            slug="case-closed",
        )
    report = FailedAttemptReport(attempt=_attempt(body), by=by)
    state = await run_update(case, contracts.REPORT_FAILED_ATTEMPT, report, reader.timeouts)
    return await reader.detail(case, state)
