"""`POST /cases/failed-deliveries`: open the case for a failed attempt, or hand a later
attempt of the same shipment to its open case. Workflow ID = `failed-delivery-{shipment_id}`,
so a repeat post can never start a second case."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import ValidationError

from api.case_models import CaseDetail, FailedDeliveryOpen
from api.casework import CaseReader, Reader, detail_from_row, query_state, run_update, start_case
from api.deps import CaseRef, OpsKey, SessionDep, TemporalDep
from api.errors import Problem, invalid_fields, temporal_unreachable
from schemas.cases import FailedAttempt, FailedAttemptReport, FailedDeliveryInput
from schemas.enums import CaseStatus, CaseType
from schemas.policies import resolve_policy
from schemas.tables import Case, Client, Driver
from workflows.failed_delivery import FailedDeliveryWorkflow

router = APIRouter(prefix="/cases", tags=["cases"])


async def _case_input(
    body: FailedDeliveryOpen, session: SessionDep, opened_by: str
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
        policy = resolve_policy(CaseType.FAILED_DELIVERY, client.policy_overrides)
        claim_policy = resolve_policy(CaseType.DAMAGE_CLAIM, client.policy_overrides)
    except ValidationError:
        message = f"client '{client.id}' has an invalid policy override"
        raise invalid_fields([{"field": "client_id", "message": message}]) from None
    return FailedDeliveryInput(
        shipment_id=body.shipment_id,
        client_id=client.id,
        depot_id=driver.depot_id,
        customer=body.customer,
        address=body.address,
        attempt=_attempt(body),
        policy=policy,
        claim_policy=claim_policy,
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
    case_input = await _case_input(body, reader.session, by)
    case_type = CaseType.FAILED_DELIVERY
    case = CaseRef(case_type.workflow_id(body.shipment_id), None, temporal)
    started = await start_case(
        temporal,
        FailedDeliveryWorkflow.run,
        case_input,
        case_type=case_type,
        case_id=case.case_id,
        client_id=case_input.client_id,
        task_queue=reader.settings.temporal_task_queue,
    )
    if not started:
        response.status_code = status.HTTP_200_OK
        return await _existing_case(case, body, by, reader)

    response.headers["Location"] = f"/cases/{case.case_id}"
    try:
        return await reader.detail(case)
    except Problem as problem:
        if problem.status != 503:
            raise
        # Started, but no worker has picked it up yet: answer with what we know.
        return _just_opened(case_input, case.case_id, reader)


async def _existing_case(
    case: CaseRef, body: FailedDeliveryOpen, by: str, reader: CaseReader
) -> CaseDetail:
    """The shipment has a case already: a later attempt goes to it; a repeat changes
    nothing; a new attempt for a closed case is refused (the shipment's case is over)."""
    state = await query_state(case.handle, reader.timeouts)
    if state is not None:
        current, terminal = int(state.details.get("attempt_number", 1)), state.status.is_terminal
    else:
        case.row = await reader.session.get(Case, case.case_id)
        if case.row is None:
            raise temporal_unreachable("the case did not answer in time; is the worker running?")
        current = int(case.row.details.get("attempt_number", 1))
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
    state = await run_update(case, "report_failed_attempt", report, reader.timeouts)
    return await reader.detail(case, state)


def _just_opened(case_input: FailedDeliveryInput, case_id: str, reader: CaseReader) -> CaseDetail:
    return CaseDetail(
        case_id=case_id,
        type=CaseType.FAILED_DELIVERY,
        status=CaseStatus.OPEN,
        resolution=None,
        business_key=case_input.shipment_id,
        client_id=case_input.client_id,
        subject=f"Shipment {case_input.shipment_id}: attempt "
        f"{case_input.attempt.attempt_number} failed ({case_input.attempt.reason.value})",
        opened_at=reader.now,
        closed_at=None,
        deadline_at=None,
        overdue=False,
        escalated=False,
        assignee=None,
        next_step=None,
        next_step_at=None,
        trace_url=reader.settings.trace_url(case_id),
        live=False,
    )
