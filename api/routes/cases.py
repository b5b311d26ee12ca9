"""Cases of every type: the list (SQL index), the detail (live query) and the actions.

Actions are Temporal updates called by name, so every case type shares these routes; the
workflow's validator decides whether an action is allowed now (409 with its reason)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import and_, false, not_, or_
from sqlmodel import col, select

from api.case_models import (
    AssignIn,
    CaseDetail,
    CaseSummary,
    DeliveryOutcomeIn,
    NoteIn,
    ReasonIn,
)
from api.casework import Reader, require_state, run_update, summary_from_row
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
from api.listing import paginate
from api.models import Page
from schemas.cases import (
    AssignInput,
    CancelInput,
    DeliveryOutcomeReport,
    EscalateInput,
    NoteInput,
    RedeliveryChoice,
    RedeliveryRequest,
)
from schemas.enums import CaseStatus, CaseType, RedeliveryOption
from schemas.tables import Case, PickupPoint

router = APIRouter(prefix="/cases", tags=["cases"])

TERMINAL = [s for s in CaseStatus if s.is_terminal]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@router.get("", summary="List and search cases, newest first")
async def list_cases(
    session: SessionDep,
    settings: SettingsDep,
    now: Now,
    _: ViewerKey,
    page: PageDep,
    type: CaseType | None = None,
    status: CaseStatus | None = None,
    client_id: str | None = None,
    escalated: bool | None = None,
    overdue: bool | None = None,
    assignee: str | None = None,
    q: str | None = None,
) -> Page[CaseSummary]:
    statement = select(Case).order_by(col(Case.opened_at).desc(), col(Case.id))
    if type:
        statement = statement.where(Case.type == type)
    if status:
        statement = statement.where(Case.status == status)
    if client_id:
        statement = statement.where(Case.client_id == client_id)
    if escalated is not None:
        statement = statement.where(Case.escalated == escalated)
    if assignee:
        statement = statement.where(Case.assignee == assignee)
    if overdue is not None:
        is_overdue = and_(
            col(Case.deadline_at).is_not(None),
            col(Case.deadline_at) < now,
            col(Case.status).not_in(TERMINAL),
        )
        statement = statement.where(is_overdue if overdue else not_(is_overdue))
    if q and q.strip():
        pattern = f"%{_escape_like(q.strip())}%"
        statement = statement.where(
            or_(
                false(),
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (col(Case.id), col(Case.business_key), col(Case.subject))
                ),
            )
        )
    rows, total = await paginate(session, statement, page)
    return Page(
        items=[summary_from_row(row, settings, now) for row in rows],
        total=total,
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

    async def __call__(self, update: str, arg: BaseModel) -> CaseDetail:
        state = await run_update(self.case, update, arg, self.reader.timeouts)
        return await self.reader.detail(self.case, state)


Act = Annotated[CaseAction, Depends()]


@router.post("/{case_id}/redelivery", summary="Book a redelivery on the customer's behalf")
async def redelivery(body: RedeliveryRequest, key: OpsKey, act: Act) -> CaseDetail:
    state = await require_state(act.case.handle, act.reader.timeouts)
    if body.option is RedeliveryOption.PICKUP_POINT:
        point = await act.reader.session.get(PickupPoint, body.pickup_point_id)
        depot_id = state.details.get("depot_id")
        if point is None or point.depot_id != depot_id:
            raise invalid(
                "pickup_point_id",
                f"no pickup point '{body.pickup_point_id}' at depot '{depot_id}'",
            )
    choice = RedeliveryChoice(
        **body.model_dump(),
        attempt_number=int(state.details.get("attempt_number", 1)),
        by=f"ops:{key.name}",
    )
    return await act("choose_redelivery", choice)


@router.post(
    "/{case_id}/delivery-outcome",
    summary="Report the redelivery's outcome",
    description="The routing system reports how the booked redelivery went. It should send "
    "`attempt_number` (the attempt the outcome is for, as in the case's "
    "`details.attempt_number`): an outcome for another attempt, such as a webhook retried "
    "after the next attempt began, is then refused with 409 rather than applied twice. "
    "Without it the outcome applies to the current attempt.",
)
async def delivery_outcome(body: DeliveryOutcomeIn, key: OpsKey, act: Act) -> CaseDetail:
    report = DeliveryOutcomeReport(**body.model_dump(), by=f"ops:{key.name}")
    return await act("record_delivery_outcome", report)


@router.post("/{case_id}/notes", summary="Add a note to the timeline")
async def add_note(body: NoteIn, key: OpsKey, act: Act) -> CaseDetail:
    return await act("add_note", NoteInput(text=body.text, by=f"ops:{key.name}"))


@router.post("/{case_id}/assign", summary="Assign (or unassign) the case")
async def assign(body: AssignIn, key: OpsKey, act: Act) -> CaseDetail:
    return await act("assign", AssignInput(assignee=body.assignee, by=f"ops:{key.name}"))


@router.post(
    "/{case_id}/escalate",
    summary="Escalate to the responsible person",
    description="Answers once the case is marked escalated; the escalation email is sent "
    "afterwards (it appears in `messages` once stored).",
)
async def escalate(body: ReasonIn, key: OpsKey, act: Act) -> CaseDetail:
    return await act("escalate", EscalateInput(reason=body.reason, by=f"ops:{key.name}"))


@router.post(
    "/{case_id}/cancel",
    summary="Cancel the case",
    description="Answers once the case has accepted the cancellation, usually with `status` "
    "`cancelled`; when the case takes longer to close, with the status it had (the "
    "cancellation goes ahead). Read the case to see it closed.",
)
async def cancel(body: ReasonIn, key: OpsKey, act: Act) -> CaseDetail:
    return await act("cancel", CancelInput(reason=body.reason, by=f"ops:{key.name}"))
