"""Cases of every type: the list (SQL index), the detail (live query) and the actions.

Every action route first asks the registry whether the case's type has the action (409
naming the type and its actions when not); then the workflow's validator decides whether it
is allowed now (409 with its reason). Updates are called through their typed contracts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel

from api.case_models import CaseDetail, CaseSort, CaseSummary
from api.case_query import CaseFilters, Position, after, case_list_statement
from api.casework import (
    Reader,
    details_as,
    finished,
    note_after_close,
    require_action,
    require_state,
    run_update,
    summary_from_row,
)
from api.deps import (
    CurrentCase,
    Now,
    OpsKey,
    PageDep,
    SessionDep,
    SettingsDep,
    ViewerKey,
)
from api.errors import invalid
from api.listing import count_of
from api.models import Page
from api.stuck import StuckFilters, StuckList, find_stuck
from core.db import dialect_of, release_connection
from schemas import contracts
from schemas.cases import (
    AssignInput,
    CancelInput,
    DeliveryOutcomeReport,
    EscalateInput,
    FailedAttempt,
    FailedAttemptReport,
    FailedDeliveryDetails,
    NoteInput,
    RedeliveryChoice,
    RedeliveryRequest,
)
from schemas.contracts import UpdateContract
from schemas.enums import CaseStatus, CaseType, RedeliveryOption
from schemas.requests import AssignIn, DeliveryOutcomeIn, FailedAttemptIn, NoteIn, ReasonIn
from schemas.stuck import StuckKind
from schemas.tables import PickupPoint

In = TypeVar("In", bound=BaseModel)

router = APIRouter(prefix="/cases", tags=["cases"])


@router.get("", summary="List and search cases (newest first unless sorted)")
async def list_cases(
    session: SessionDep,
    settings: SettingsDep,
    now: Now,
    _: ViewerKey,
    page: PageDep,
    type: CaseType | None = None,
    status: CaseStatus | None = None,
    client_id: str | None = None,
    depot_id: str | None = None,
    escalated: bool | None = None,
    overdue: bool | None = None,
    assignee: str | None = None,
    deadline_before: Annotated[
        AwareDatetime | None, Query(description="Only cases whose deadline is before this.")
    ] = None,
    deadline_after: Annotated[
        AwareDatetime | None, Query(description="Only cases whose deadline is at or after this.")
    ] = None,
    q: str | None = None,
    sort: Annotated[
        CaseSort, Query(description="The order: a column, `-` first for descending.")
    ] = CaseSort.OPENED_DESC,
    cursor: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="Continue after the page that gave this `next_cursor` (same filters "
            "and sort). Deep pages cost what the first does; `offset` reads and skips.",
        ),
    ] = None,
) -> Page[CaseSummary]:
    if deadline_before and deadline_after and deadline_before <= deadline_after:
        raise invalid("deadline_before", "the end of the deadline range must be after its start")
    filters = CaseFilters(
        type=type,
        status=status,
        client_id=client_id,
        depot_id=depot_id,
        escalated=escalated,
        overdue=overdue,
        assignee=assignee,
        deadline_before=deadline_before,
        deadline_after=deadline_after,
        q=q,
    )
    statement = case_list_statement(filters, sort, now, dialect_of(session))
    position = None
    if cursor is not None:
        if page.offset:
            raise invalid("offset", "give either a cursor or an offset, not both")
        try:
            position = Position.decode(cursor, sort)
        except ValueError as error:
            raise invalid("cursor", str(error)) from None
    total = await count_of(session, statement)
    query = after(statement, position) if position else statement.offset(page.offset)
    rows = list((await session.exec(query.limit(page.limit + 1))).all())
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(
        items=[summary_from_row(row, settings, now) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
        next_cursor=Position.of(rows[-1], sort).encode() if more else None,
    )


@router.get(
    "/stuck",
    summary="The stuck-case radar: open cases that need a person, oldest first",
    description="Every open case with at least one reason to need a person, each reason with "
    "its `kind`, words and `since`; `since` of the case is its oldest reason's. Thresholds are "
    "each type's `stuck` policy in `GET /case-types`. `activity_retrying`, "
    "`workflow_task_failing` and `workflow_not_running` come from Temporal: when it does not "
    "answer, the other reasons "
    "are still listed and `live` is false (`temporal_detail` says why).",
)
async def stuck_cases(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: Now,
    _: ViewerKey,
    page: PageDep,
    kind: StuckKind | None = None,
    type: CaseType | None = None,
    depot_id: str | None = None,
    client_id: str | None = None,
) -> StuckList:
    return await find_stuck(
        session=session,
        temporal=request.app.state.temporal,
        settings=settings,
        now=now,
        filters=StuckFilters(kind=kind, type=type, depot_id=depot_id, client_id=client_id),
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{case_id}", summary="One case: live state, timeline, messages")
async def get_case(_: ViewerKey, case: CurrentCase, reader: Reader) -> CaseDetail:
    return await reader.detail(case)


class CaseAction:
    """Runs one update on the current case and answers with the detail it leaves."""

    def __init__(self, case: CurrentCase, reader: Reader) -> None:
        self.case, self.reader = case, reader

    async def __call__(self, update: UpdateContract[In], arg: In) -> CaseDetail:
        await release_connection(self.reader.session)  # not held while the workflow works
        state = await run_update(self.case, update, arg, self.reader.timeouts)
        return await self.reader.detail(self.case, state)


def acting(action: str) -> Callable[[CurrentCase, Reader], Awaitable[CaseAction]]:
    """The dependency of `POST /cases/{case_id}/{action}`: the case, once the registry says
    its type has `action` (409 otherwise, before the body is used)."""

    async def dependency(case: CurrentCase, reader: Reader) -> CaseAction:
        require_action(case.case_id, action)
        return CaseAction(case, reader)

    return dependency


@router.post("/{case_id}/redelivery", summary="Book a redelivery on the customer's behalf")
async def redelivery(
    body: RedeliveryRequest, key: OpsKey, act: Annotated[CaseAction, Depends(acting("redelivery"))]
) -> CaseDetail:
    state = await require_state(act.case.handle, act.reader.timeouts)
    details = details_as(FailedDeliveryDetails, state.case_id, state.details)
    if body.option is RedeliveryOption.PICKUP_POINT:
        point = await act.reader.session.get(PickupPoint, body.pickup_point_id)
        depot_id = details.depot_id
        if point is None or point.depot_id != depot_id:
            raise invalid(
                "pickup_point_id",
                f"no pickup point '{body.pickup_point_id}' at depot '{depot_id}'",
            )
    choice = RedeliveryChoice(
        **body.model_dump(),
        attempt_number=details.attempt_number,
        by=f"ops:{key.name}",
    )
    return await act(contracts.CHOOSE_REDELIVERY, choice)


@router.post(
    "/{case_id}/delivery-outcome",
    summary="Report the redelivery's outcome",
    description="The routing system reports how the booked redelivery went. It should send "
    "`attempt_number` (the attempt the outcome is for, as in the case's "
    "`details.attempt_number`): an outcome for another attempt, such as a webhook retried "
    "after the next attempt began, is then refused with 409 rather than applied twice. "
    "Without it the outcome applies to the current attempt.",
)
async def delivery_outcome(
    body: DeliveryOutcomeIn,
    key: OpsKey,
    act: Annotated[CaseAction, Depends(acting("delivery-outcome"))],
) -> CaseDetail:
    report = DeliveryOutcomeReport(**body.model_dump(), by=f"ops:{key.name}")
    return await act(contracts.RECORD_DELIVERY_OUTCOME, report)


@router.post(
    "/{case_id}/failed-attempt",
    summary="Report a later failed attempt of the shipment",
    description="The same as posting the attempt to `POST /cases/failed-deliveries`, addressed "
    "to the case: it must be higher than the case's current attempt (409 otherwise).",
)
async def failed_attempt(
    body: FailedAttemptIn,
    key: OpsKey,
    act: Annotated[CaseAction, Depends(acting("failed-attempt"))],
) -> CaseDetail:
    report = FailedAttemptReport(attempt=FailedAttempt(**body.model_dump()), by=f"ops:{key.name}")
    return await act(contracts.REPORT_FAILED_ATTEMPT, report)


@router.post("/{case_id}/notes", summary="Add a note to the timeline")
async def add_note(
    body: NoteIn, key: OpsKey, act: Annotated[CaseAction, Depends(acting("notes"))]
) -> CaseDetail:
    """A closed case takes notes too ("customer called back to say thanks"): written to its
    timeline directly once its workflow has finished."""
    by = f"ops:{key.name}"
    reader = act.reader
    if await finished(act.case, reader.session):
        await note_after_close(reader.session, act.case.case_id, body.text, by, reader.now)
        return await reader.detail(act.case)
    return await act(contracts.ADD_NOTE, NoteInput(text=body.text, by=by))


@router.post("/{case_id}/assign", summary="Assign (or unassign) the case")
async def assign(
    body: AssignIn, key: OpsKey, act: Annotated[CaseAction, Depends(acting("assign"))]
) -> CaseDetail:
    return await act(contracts.ASSIGN, AssignInput(assignee=body.assignee, by=f"ops:{key.name}"))


@router.post(
    "/{case_id}/escalate",
    summary="Escalate to the responsible person",
    description="Answers once the case is marked escalated; the escalation email is sent "
    "afterwards (it appears in `messages` once stored).",
)
async def escalate(
    body: ReasonIn, key: OpsKey, act: Annotated[CaseAction, Depends(acting("escalate"))]
) -> CaseDetail:
    return await act(contracts.ESCALATE, EscalateInput(reason=body.reason, by=f"ops:{key.name}"))


@router.post(
    "/{case_id}/cancel",
    summary="Cancel the case",
    description="Answers once the case has accepted the cancellation, usually with `status` "
    "`cancelled`; when the case takes longer to close, with the status it had (the "
    "cancellation goes ahead). Read the case to see it closed.",
)
async def cancel(
    body: ReasonIn, key: OpsKey, act: Annotated[CaseAction, Depends(acting("cancel"))]
) -> CaseDetail:
    return await act(contracts.CANCEL, CancelInput(reason=body.reason, by=f"ops:{key.name}"))
