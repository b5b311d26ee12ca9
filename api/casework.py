"""Reading and acting on cases: the workflow query (live), the SQL index (fallback and
lists), and updates through their typed contracts (`schemas.contracts`), so that every case
type goes through the same code and nothing here knows a workflow class."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Response, status
from pydantic import BaseModel, ValidationError
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import TemporalError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import idempotency
from api.case_models import CaseDetail, CaseMessage, CaseSummary, TimelineItem
from api.deps import (
    CaseRef,
    Now,
    SessionDep,
    SettingsDep,
    Timeouts,
    TimeoutsDep,
    workflow_status,
)
from api.errors import (
    CALL_LIMIT,
    Problem,
    case_closed,
    ensure_reachable,
    problem_from_temporal,
    temporal_call,
    temporal_unreachable,
    unknown_case,
    update_unconfirmed,
)
from core.db import release_connection
from core.logs import CASE_ID
from core.settings import Settings
from core.temporal import CASE_STATUS, CASE_TYPE, CLIENT_ID, DEADLINE_AT, DEPOT_ID, ESCALATED
from schemas.case_types import CaseTypeSpec, spec_for, spec_for_case_id
from schemas.cases import CaseSnapshot, CaseState, TimelineEvent
from schemas.contracts import STATE_QUERY, UpdateContract
from schemas.enums import CaseStatus, CaseType
from schemas.openings import FirstView
from schemas.tables import Case, Message, TimelineEntry
from schemas.ui_text import case_details, case_summary

In = TypeVar("In", bound=BaseModel)

log = logging.getLogger("casedesk.api")

SUBJECT_MEMO = "subject"
"""The memo field that holds a case's subject (ids and words, no personal data)."""


def is_overdue(deadline_at: datetime | None, terminal: bool, now: datetime) -> bool:
    return deadline_at is not None and not terminal and deadline_at < now


def summary_from_row(row: Case, settings: Settings, now: datetime) -> CaseSummary:
    return CaseSummary(
        case_id=row.id,
        type=row.type,
        status=row.status,
        resolution=row.resolution,
        business_key=row.business_key,
        client_id=row.client_id,
        depot_id=row.depot_id,
        subject=row.subject,
        opened_at=row.opened_at,
        closed_at=row.closed_at,
        deadline_at=row.deadline_at,
        overdue=is_overdue(row.deadline_at, row.status.is_terminal, now),
        escalated=row.escalated,
        escalation_reason=row.escalation_reason,
        assignee=row.assignee,
        next_step=row.next_step,
        next_step_at=row.next_step_at,
        trace_url=settings.trace_url(row.id),
        updated_at=row.updated_at,
    )


def _summary_fields(snapshot: CaseSnapshot, settings: Settings, now: datetime) -> dict[str, Any]:
    return {
        "case_id": snapshot.case_id,
        "type": snapshot.case_type,
        "status": snapshot.status,
        "resolution": snapshot.resolution,
        "business_key": snapshot.business_key,
        "client_id": snapshot.client_id,
        "depot_id": snapshot.depot_id,
        "subject": snapshot.subject,
        "opened_at": snapshot.opened_at,
        "closed_at": snapshot.closed_at,
        "deadline_at": snapshot.deadline_at,
        "overdue": is_overdue(snapshot.deadline_at, snapshot.status.is_terminal, now),
        "escalated": snapshot.escalated,
        "escalation_reason": snapshot.escalation_reason,
        "assignee": snapshot.assignee,
        "next_step": snapshot.next_step,
        "next_step_at": snapshot.next_step_at,
        "trace_url": settings.trace_url(snapshot.case_id),
    }


async def case_messages(session: AsyncSession, case_id: str) -> list[CaseMessage]:
    rows = await session.exec(
        select(Message).where(Message.case_id == case_id).order_by(col(Message.created_at))
    )
    return [CaseMessage.model_validate(row, from_attributes=True) for row in rows.all()]


async def start_case(
    temporal: Client,
    spec: CaseTypeSpec,
    case_input: BaseModel,
    *,
    case_id: str,
    client_id: str | None,
    depot_id: str | None = None,
    task_queue: str,
    deadline: datetime | None = None,
    subject: str | None = None,
    static_summary: str | None = None,
    static_details: str | None = None,
    limit: timedelta = CALL_LIMIT,
) -> bool:
    """Start a case's workflow, its search attributes set from the first moment (so the
    Temporal UI can filter it before the worker has run) and its subject in the memo (so the
    API can describe it before the worker has indexed it), with the Temporal UI's static
    summary and details (`schemas.ui_text`: ids and dates, no personal data). False when the
    business key already has a case: one case per key, ever (REJECT_DUPLICATE). 503 when
    Temporal has not answered within `limit`: a retry is safe, the business key makes it a
    repeat."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(CASE_TYPE, spec.case_type.value),
        SearchAttributePair(CASE_STATUS, CaseStatus.OPEN.value),
        SearchAttributePair(ESCALATED, False),
    ]
    if client_id:
        pairs.append(SearchAttributePair(CLIENT_ID, client_id))
    if depot_id:
        pairs.append(SearchAttributePair(DEPOT_ID, depot_id))
    if deadline is not None:
        pairs.append(SearchAttributePair(DEADLINE_AT, deadline))
    try:
        with temporal_call():
            async with asyncio.timeout(limit.total_seconds()):
                await temporal.start_workflow(
                    spec.workflow_type,
                    case_input,
                    id=case_id,
                    task_queue=task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=TypedSearchAttributes(pairs),
                    memo={SUBJECT_MEMO: subject} if subject else None,
                    static_summary=static_summary,
                    static_details=static_details,
                    rpc_timeout=limit,
                )
    except WorkflowAlreadyStartedError:
        return False
    return True


_CALLER_ERRORS = (
    RPCStatusCode.INVALID_ARGUMENT,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.UNAUTHENTICATED,
)


async def query_state(handle: WorkflowHandle[Any, Any], timeouts: Timeouts) -> CaseState | None:
    """The live state, or None when nobody answers within `timeouts.query` (no worker,
    Temporal down: the connection's retries included)."""
    try:
        with temporal_call():
            async with asyncio.timeout(timeouts.query.total_seconds()):
                return await handle.query(
                    STATE_QUERY, result_type=CaseState, rpc_timeout=timeouts.query
                )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise unknown_case(handle.id) from None
        if err.status in _CALLER_ERRORS:
            raise (problem_from_temporal(err) or err) from None
        # Any other status (no worker answered in time, the query was cancelled while a
        # worker shut down, the server is busy): the SQL index can still answer the read.
        log.warning("state query for %s failed (%s); serving the index", handle.id, err.status)
        return None
    except Problem as problem:
        if problem.status == 503:
            return None
        raise


async def require_state(handle: WorkflowHandle[Any, Any], timeouts: Timeouts) -> CaseState:
    state = await query_state(handle, timeouts)
    if state is None:
        raise temporal_unreachable("the case did not answer in time; is the worker running?")
    return state


def require_action(case_id: str, action: str) -> CaseTypeSpec:
    """The case's type, when it has `action`; 409 naming the type and its actions when it
    does not (the workflow id says which type a case is)."""
    spec = spec_for_case_id(case_id)
    if spec is not None and spec.action(action) is not None:
        return spec
    if spec is None:
        raise Problem(409, f"case '{case_id}' is of no known type", slug="action-not-allowed")
    raise Problem(
        409,
        f"a {spec.case_type.value} case has no '{action}' action; its actions are: "
        + ", ".join(spec.action_names),
        slug="action-not-allowed",
    )


async def run_update(
    case: CaseRef,
    update: UpdateContract[In],
    arg: In,
    timeouts: Timeouts,
    *,
    refresh: bool = True,
    update_id: str | None = None,
) -> CaseState:
    """Execute `update` and return the case's state after it.

    The update's own result leaves out the timeline (so the workflow's history does not grow
    with every action), so the state is queried afresh; when the query does not answer, the
    update's result (timeline empty) is what we have.

    Its validator's refusal becomes 409 (or 422) with the reason. Temporal unreachable is 503
    within the call limit (checked first); an update not confirmed within `timeouts.update`
    is 504 at that limit: the wait for its outcome is cancelled, and the update may still be
    applied. The same `update_id` (from the request's Idempotency-Key) sent again is the same
    update to Temporal, never a second one. An update to a finished workflow is refused by
    the server as NOT_FOUND: tell a closed case (409) from an unknown one (404) by
    describing the workflow."""
    await ensure_reachable(case.client, min(CALL_LIMIT, timeouts.update))
    update_id = update_id or idempotency.update_id(case.case_id, update.name)
    try:
        async with asyncio.timeout(timeouts.update.total_seconds()):
            with temporal_call():
                applied = await case.handle.execute_update(
                    update.name,
                    arg,
                    id=update_id,
                    result_type=CaseState,
                    rpc_timeout=timeouts.update,
                )
    except TimeoutError:  # our bound: the SDK polls an accepted update's outcome unbounded
        log.warning("%s on %s not confirmed within %s", update.name, case.case_id, timeouts.update)
        raise update_unconfirmed() from None
    except (WorkflowUpdateFailedError, RPCTimeoutOrCancelledError, RPCError) as err:
        if not (isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND):
            raise (problem_from_temporal(err) or err) from None
    else:
        if not refresh:  # the caller needs no timeline: spare the extra query
            return applied
        return await _state_after_update(case.handle, applied, timeouts)
    try:
        execution_status = await workflow_status(case.client, case.case_id)
    except RPCError as err:
        raise (problem_from_temporal(err) or err) from None
    if execution_status != WorkflowExecutionStatus.RUNNING:
        raise case_closed(case.case_id)
    raise unknown_case(case.case_id)


async def _state_after_update(
    handle: WorkflowHandle[Any, Any], applied: CaseState, timeouts: Timeouts
) -> CaseState:
    """The queried state (with its timeline); the update's own result when that fails: the
    action is done either way, so a failing read must not turn it into an error."""
    try:
        fresh = await query_state(handle, timeouts)
    except (Problem, TemporalError):  # e.g. the query handler failed: keep the update's answer
        fresh = None
    return fresh if fresh is not None else applied


PACKAGE_KIND = "claim_package"


def listed_documents(details: dict[str, Any]) -> list[dict[str, Any]]:
    """The documents a case's details name, each once (`id`, `kind`, `sha256`): the entries
    of `documents` (by `id`, or `document_id` for a watched driver document), then any
    document an item of a list holds (`{"document": {...}}`: a driver's renewal in review),
    then the claim package (`package_id`, kind `claim_package`)."""
    found: dict[str, dict[str, Any]] = {}

    def add(doc: Any, id_key: str = "id") -> None:
        if isinstance(doc, dict) and doc.get(id_key):
            doc_id = str(doc[id_key])
            found.setdefault(
                doc_id, {"id": doc_id, "kind": doc.get("kind"), "sha256": doc.get("sha256")}
            )

    for doc in details.get("documents") or []:
        add(doc, "id" if isinstance(doc, dict) and "id" in doc else "document_id")
    for value in details.values():
        for item in value if isinstance(value, list) else ():
            add(item.get("document") if isinstance(item, dict) else None)
    package_id = details.get("package_id")
    if package_id:
        add({"id": package_id, "kind": PACKAGE_KIND, "sha256": None})
    return list(found.values())


_HELD_ITEM = ("in_review", "approved")


def held_documents(details: dict[str, Any]) -> list[dict[str, Any]]:
    """The documents a case holds now, each with its `kind` and `sha256`: what an identical
    upload for the same item would only duplicate. A claim holds all its evidence; a driver
    case the documents of its items in review or approved and the documents it watches, not
    the ones it rejected (the same file may be sent again after a rejection)."""
    items = [
        item
        for key in ("checklist", "renewals")
        if isinstance(details.get(key), list)
        for item in details[key]
        if isinstance(item, dict)
    ]
    if not items and not isinstance(details.get("checklist"), list):
        return listed_documents(details)
    held = [
        {"kind": item.get("kind"), "sha256": item["document"].get("sha256")}
        for item in items
        if item.get("status") in _HELD_ITEM and isinstance(item.get("document"), dict)
    ]
    held += [
        {"kind": doc.get("kind"), "sha256": doc.get("sha256")}
        for doc in details.get("documents") or []
        if isinstance(doc, dict) and "document_id" in doc  # a watched, approved document
    ]
    return held


def case_documents(
    case_type: CaseType, case_id: str, details: dict[str, Any]
) -> list[dict[str, Any]]:
    """The documents a case holds (`listed_documents`), each with its download URL."""
    if not spec_for(case_type).document_kinds:
        return []
    listed = listed_documents(details)
    for doc in listed:
        doc["download_url"] = f"/cases/{case_id}/documents/{doc['id']}"
    return listed


async def case_timeline(
    session: AsyncSession, case_id: str, live: list[TimelineEvent] | None = None
) -> list[TimelineItem]:
    """The whole timeline: every event in the projection, plus the live events the workflow
    has not written yet (it keeps only those; a case that continued as new has the rest in
    the projection alone)."""
    entries = await session.exec(
        select(TimelineEntry)
        .where(TimelineEntry.case_id == case_id)
        .order_by(col(TimelineEntry.seq))
    )
    merged = {e.seq: TimelineItem.model_validate(e, from_attributes=True) for e in entries.all()}
    for event in live or []:
        merged.setdefault(event.seq, TimelineItem.model_validate(event.model_dump()))
    return [merged[seq] for seq in sorted(merged)]


async def detail_from_state(
    session: AsyncSession, state: CaseState, settings: Settings, now: datetime
) -> CaseDetail:
    return CaseDetail(
        **_summary_fields(state, settings, now),
        details=state.details,
        allowed_actions=with_closed_actions(state.allowed_actions, state.status),
        documents=case_documents(state.case_type, state.case_id, state.details),
        timeline=await case_timeline(session, state.case_id, state.timeline),
        messages=await case_messages(session, state.case_id),
        live=True,
    )


async def detail_from_row(
    session: AsyncSession, row: Case, settings: Settings, now: datetime
) -> CaseDetail:
    return CaseDetail(
        **summary_from_row(row, settings, now).model_dump(),
        details=row.details,
        allowed_actions=with_closed_actions([], row.status),
        documents=case_documents(row.type, row.id, row.details),
        timeline=await case_timeline(session, row.id),
        messages=await case_messages(session, row.id),
        live=False,
    )


async def detail_from_temporal(
    session: AsyncSession, case: CaseRef, settings: Settings, now: datetime, limit: timedelta
) -> CaseDetail:
    """What Temporal itself knows of a case the index does not have yet (no worker has run
    it): its search attributes, its memo's subject and its start time; `live` is false. 404
    for an unknown case, 503 when Temporal does not answer within `limit`."""
    try:
        with temporal_call():
            async with asyncio.timeout(limit.total_seconds()):
                described = await case.handle.describe(rpc_timeout=limit)
                subject = await described.memo_value(SUBJECT_MEMO, None, type_hint=str)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise unknown_case(case.case_id) from None
        raise (problem_from_temporal(err) or err) from None
    attributes = described.typed_search_attributes
    spec = spec_for_case_id(case.case_id)
    if spec is None:
        raise unknown_case(case.case_id)
    status = CaseStatus(attributes.get(CASE_STATUS) or CaseStatus.OPEN.value)
    deadline_at = attributes.get(DEADLINE_AT)
    return CaseDetail(
        case_id=case.case_id,
        type=spec.case_type,
        status=status,
        resolution=None,
        business_key=case.case_id.removeprefix(f"{spec.case_type.workflow_id_prefix}-"),
        client_id=attributes.get(CLIENT_ID),
        depot_id=attributes.get(DEPOT_ID),
        subject=subject or case.case_id,
        opened_at=described.start_time,
        closed_at=described.close_time,
        deadline_at=deadline_at,
        overdue=is_overdue(deadline_at, status.is_terminal, now),
        escalated=bool(attributes.get(ESCALATED)),
        assignee=None,
        next_step=None,
        next_step_at=None,
        trace_url=settings.trace_url(case.case_id),
        timeline=await case_timeline(session, case.case_id),
        messages=await case_messages(session, case.case_id),
        live=False,
    )


async def load_detail(
    case: CaseRef,
    *,
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    timeouts: Timeouts,
    state: CaseState | None = None,
) -> CaseDetail:
    """Live detail from the workflow; when no worker answers, the index row, or what
    Temporal knows of a case not indexed yet (`live: false` either way)."""
    if state is None:
        await release_connection(session)  # not held while the workflow answers
        state = await query_state(case.handle, timeouts)
    if state is not None:
        return await detail_from_state(session, state, settings, now)
    row = await session.get(Case, case.case_id, populate_existing=True)
    if row is None:
        return await detail_from_temporal(session, case, settings, now, timeouts.query)
    return await detail_from_row(session, row, settings, now)


class CaseReader:
    """Everything reading a case needs, as one dependency: `reader.detail(case)`."""

    def __init__(
        self, session: SessionDep, settings: SettingsDep, now: Now, timeouts: TimeoutsDep
    ) -> None:
        self.session, self.settings, self.now, self.timeouts = session, settings, now, timeouts

    async def detail(self, case: CaseRef, state: CaseState | None = None) -> CaseDetail:
        return await load_detail(
            case,
            session=self.session,
            settings=self.settings,
            now=self.now,
            timeouts=self.timeouts,
            state=state,
        )


async def case_reader(
    session: SessionDep, settings: SettingsDep, now: Now, timeouts: TimeoutsDep
) -> CaseReader:
    """`CaseReader` as a dependency, built on the event loop (a class is built in FastAPI's
    thread pool)."""
    return CaseReader(session, settings, now, timeouts)


Reader = Annotated[CaseReader, Depends(case_reader)]


@dataclass(frozen=True)
class Opening:
    """A case about to be opened: its type, its workflow input (its `opened_at` is set when
    it starts) and what its index row and the Temporal UI name it by."""

    spec: CaseTypeSpec
    case_input: BaseModel
    business_key: str
    client_id: str | None
    subject: str
    depot_id: str | None = None

    def first_view(self, at: datetime) -> FirstView:
        """What the opening determines, as the workflow's init sets it (`schemas.openings`)."""
        assert self.spec.first_view is not None, f"{self.spec.case_type} is not opened by the API"
        return self.spec.first_view(self.case_input, at)


def opening_details(opening: Opening, first: FirstView) -> str:
    """The static details of a case about to be opened: what it is, its deadline and its
    policy's spans, in the zone its input names (the depot's or the client's)."""
    case_input = opening.case_input
    policy = getattr(case_input, "policy", None)
    return case_details(
        opening.spec.case_type,
        subject=opening.subject,
        client_id=opening.client_id,
        depot_id=opening.depot_id,
        zone_name=getattr(case_input, "timezone", None),
        policy=policy if isinstance(policy, BaseModel) else None,
        key_dates={"Deadline": first.deadline_at} if first.deadline_at else None,
    )


async def open_case(
    opening: Opening,
    *,
    response: Response,
    temporal: Client,
    reader: CaseReader,
    existing: Callable[[CaseRef], Awaitable[CaseDetail]] | None = None,
) -> CaseDetail:
    """Start the case and answer 201 with what its opening determines (status, deadline,
    next step, allowed actions: `schemas.openings`, the same functions its workflow's init
    sets them from), without waiting on a worker: a burst of openings is answered as fast as
    Temporal records the starts, whatever the workers' backlog. A case the business key
    already has is answered 200 (`existing` decides what a repeat means; by default it
    changes nothing)."""
    spec = opening.spec
    case = CaseRef(spec.case_type.workflow_id(opening.business_key), None, temporal)
    CASE_ID.set(case.case_id)  # the request's log lines name the case (core.logs)
    case_input = opening.case_input.model_copy(update={"opened_at": reader.now})
    first = opening.first_view(reader.now)
    await release_connection(reader.session)  # the reads are done: not held through the start
    started = await start_case(
        temporal,
        spec,
        case_input,
        case_id=case.case_id,
        client_id=opening.client_id,
        depot_id=opening.depot_id,
        task_queue=reader.settings.temporal_task_queue,
        deadline=first.deadline_at,
        subject=opening.subject,
        static_summary=case_summary(spec.case_type, opening.business_key, opening.client_id),
        static_details=opening_details(opening, first),
        limit=reader.timeouts.query,
    )
    if not started:
        response.status_code = status.HTTP_200_OK
        return await (existing(case) if existing else reader.detail(case))
    response.headers["Location"] = f"/cases/{case.case_id}"
    return CaseDetail(
        case_id=case.case_id,
        type=spec.case_type,
        status=CaseStatus.OPEN,
        resolution=None,
        business_key=opening.business_key,
        client_id=opening.client_id,
        depot_id=opening.depot_id,
        subject=opening.subject,
        opened_at=reader.now,
        closed_at=None,
        deadline_at=first.deadline_at,
        overdue=is_overdue(first.deadline_at, False, reader.now),
        escalated=False,
        assignee=None,
        next_step=first.next_step,
        next_step_at=first.next_step_at,
        trace_url=reader.settings.trace_url(case.case_id),
        allowed_actions=list(first.allowed_actions),
        live=False,
    )


Details = TypeVar("Details", bound=BaseModel)


def details_as(model: type[Details], case_id: str, details: dict[str, Any]) -> Details:
    """A case's `details` read as its type's model (`CaseTypeSpec.details`); a case whose
    details are not of that model (another type, or written by an older version) is a 409."""
    try:
        return model.model_validate(details)
    except ValidationError:
        log.warning("details of %s do not read as %s", case_id, model.__name__)
        raise Problem(
            409, f"case '{case_id}' has no {model.__name__} details", slug="action-not-allowed"
        ) from None


async def settled(case: CaseRef, *, limit: float = 2.0, every: float = 0.1) -> bool:
    """Wait, at most `limit` seconds, until the case's workflow has nothing in flight (no
    activity and no workflow task pending): what an action set going (the timeline entry,
    the email it sends) is then in the index, so the page shown next is not a stale first
    view. False when the limit passed first (an activity retrying) or Temporal did not
    answer; the page then shows what is recorded so far."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        remaining = deadline - loop.time()
        try:
            described = await case.handle.describe(
                rpc_timeout=timedelta(seconds=max(remaining, 0.2))
            )
        except (RPCError, TemporalError):
            return False
        raw = described.raw_description
        busy = bool(raw.pending_activities) or raw.HasField("pending_workflow_task")
        if described.status != WorkflowExecutionStatus.RUNNING or not busy:
            return True
        if remaining <= every:
            return False
        await asyncio.sleep(every)


NOTE_AFTER_CLOSE = "notes"
"""The one action a closed case still takes: a note (kept in the timeline, after the rest)."""


def with_closed_actions(allowed: list[str], status: CaseStatus) -> list[str]:
    """A closed case's actions: a note, whatever its type (its workflow has finished)."""
    if status.is_terminal and NOTE_AFTER_CLOSE not in allowed:
        return [*allowed, NOTE_AFTER_CLOSE]
    return allowed


async def note_after_close(
    session: AsyncSession, case_id: str, text: str, by: str, now: datetime
) -> None:
    """A note on a closed case, written to its timeline after its last event. Its workflow
    has finished (so every event is projected and nothing else writes this timeline); two
    notes at once cannot take one place, the unique (case, seq) says so and the later one
    takes the next."""
    for _ in range(5):
        last = await session.exec(
            select(func.max(TimelineEntry.seq)).where(TimelineEntry.case_id == case_id)
        )
        seq = (last.one() or 0) + 1
        session.add(
            TimelineEntry(
                case_id=case_id,
                seq=seq,
                at=now,
                kind="note",
                summary=text[:1000],
                actor=by,
                data={"after_close": True},
            )
        )
        try:
            await session.commit()
            return
        except IntegrityError:
            await session.rollback()
    raise Problem(409, "the note could not be added now; send it again", slug="conflict")


async def finished(case: CaseRef, session: AsyncSession) -> bool:
    """The case is closed and its workflow has finished (or its history is past retention):
    nothing else will write its timeline."""
    row = await session.get(Case, case.case_id, populate_existing=True)
    if row is None or not row.status.is_terminal:
        return False
    try:
        status = await workflow_status(case.client, case.case_id)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return True
        raise (problem_from_temporal(err) or err) from None
    return status != WorkflowExecutionStatus.RUNNING
