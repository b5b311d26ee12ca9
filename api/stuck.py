"""The stuck-case radar: every open case that needs a person, with its reasons and since when.

Two sources. The SQL case index and its timeline say what the workflows have recorded: a
deadline passed, an escalation nobody picked up, a wait past its type's window, no progress
and nothing scheduled. Temporal says what no workflow can record about itself: an activity on
its Nth attempt (with its last failure), a workflow task that keeps failing, a workflow that
no longer runs while its case is open, read from each open case's
`DescribeWorkflowExecution` (`pending_activities`, `pending_workflow_task`, the execution's
status), a bounded number at a time, within one overall budget.

When Temporal does not answer (or not for every case within the budget), the SQL reasons are
still listed and `live` is false with the reason: never a 5xx because Temporal is away.
Thresholds are each type's `StuckPolicy` (`schemas.case_types`, `CaseTypeSpec.stuck`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

from pydantic import BaseModel, Field
from sqlalchemy import case as when
from sqlalchemy import func
from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
from temporalio.api.failure.v1 import Failure
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryReverseRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.errors import CALL_LIMIT, Problem, ensure_reachable
from core.settings import Settings
from schemas.case_types import spec_for
from schemas.enums import CaseStatus, CaseType
from schemas.stuck import StuckKind
from schemas.tables import Case, TimelineEntry
from schemas.ui_text import WAITING_ON

log = logging.getLogger("casedesk.api")

DESCRIBE_CONCURRENCY = 8
"""Describe calls in flight at once: enough to check hundreds of cases within the budget,
few enough not to crowd the frontend."""
TEMPORAL_BUDGET = timedelta(seconds=5)
"""How long the radar waits for Temporal's part in all; what is not described by then is
reported as unchecked (`live: false`)."""
MAX_DESCRIBED = 1000
"""The most open cases one radar request asks Temporal about (the most recently updated)."""
FAILURE_TEXT = 500


class StuckReason(BaseModel):
    kind: StuckKind
    reason: str = Field(description="What is wrong, in words.")
    since: datetime = Field(description="Since when this reason holds (see the README).")
    activity_type: str | None = Field(None, description="The failing activity (Temporal).")
    attempt: int | None = Field(None, description="The attempt it is on (Temporal).")
    last_failure: str | None = Field(None, description="Its last failure's message (Temporal).")


class StuckLinks(BaseModel):
    case: str = Field(description="The case in the API.")
    console: str = Field(description="The case's console page.")
    temporal: str = Field(description="The case's page in the Temporal Web UI.")


class StuckCase(BaseModel):
    case_id: str
    type: CaseType
    status: CaseStatus
    subject: str
    client_id: str | None
    depot_id: str | None
    assignee: str | None
    escalated: bool
    deadline_at: datetime | None
    since: datetime = Field(description="The oldest of its reasons' `since`.")
    reasons: list[StuckReason]
    links: StuckLinks


class StuckList(BaseModel):
    items: list[StuckCase] = Field(description="Oldest `since` first.")
    total: int
    limit: int
    offset: int
    live: bool = Field(
        description="Temporal's part (activity_retrying, workflow_task_failing, "
        "workflow_not_running) is complete: "
        "every open case was checked. False when Temporal did not answer (for some cases)."
    )
    temporal_detail: str | None = Field(None, description="Why `live` is false.")
    checked: int = Field(description="Open cases Temporal was asked about and answered for.")
    unchecked: int = Field(description="Open cases Temporal's part could not check.")


@dataclass
class TimelineFacts:
    """What the timeline says of one open case."""

    last_event_at: datetime | None = None
    status_since: datetime | None = None
    escalated_at: datetime | None = None


@dataclass
class TemporalPart:
    reasons: dict[str, list[StuckReason]] = field(default_factory=dict)
    checked: int = 0
    unchecked: int = 0
    detail: str | None = None


def span(delta: timedelta) -> str:
    """A duration in words, coarse: "3 d 4 h", "5 h", "12 min"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h"
    return f"{minutes} min"


def _at(value: datetime | None) -> datetime | None:
    """Aware UTC (an aggregate read back from SQLite may come without its zone)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _timeline_facts(
    session: AsyncSession, case_ids: Sequence[str]
) -> dict[str, TimelineFacts]:
    """Per case, in one query: its last timeline event, its last status change (every status
    change writes a `status` event) and its last escalation."""
    facts: dict[str, TimelineFacts] = {}
    at = col(TimelineEntry.at)
    kind = col(TimelineEntry.kind)
    for chunk in (case_ids[i : i + 500] for i in range(0, len(case_ids), 500)):
        statement = (
            select(
                col(TimelineEntry.case_id),
                func.max(at),
                func.max(when((kind == "status", at))),
                func.max(when((kind == "escalated", at))),
            )
            .where(col(TimelineEntry.case_id).in_(chunk))
            .group_by(col(TimelineEntry.case_id))
        )
        for case_id, last, status_at, escalated_at in (await session.exec(statement)).all():
            facts[case_id] = TimelineFacts(_at(last), _at(status_at), _at(escalated_at))
    return facts


def sql_reasons(row: Case, facts: TimelineFacts, now: datetime) -> list[StuckReason]:
    """What the index and the timeline say is wrong with an open case."""
    policy = spec_for(row.type).stuck
    found: list[StuckReason] = []
    if row.deadline_at is not None and row.deadline_at < now:
        found.append(
            StuckReason(
                kind=StuckKind.DEADLINE_PASSED,
                reason=f"Deadline passed {span(now - row.deadline_at)} ago, still "
                f"{row.status.value.replace('_', ' ')}",
                since=row.deadline_at,
            )
        )
    if row.escalated and not row.assignee:
        why = f" ({row.escalation_reason})" if row.escalation_reason else ""
        found.append(
            StuckReason(
                kind=StuckKind.ESCALATED_UNASSIGNED,
                reason=f"Escalated{why}, nobody assigned",
                since=facts.escalated_at or row.opened_at,
            )
        )
    window = policy.waiting_windows.get(row.status)
    waiting_since = facts.status_since or row.opened_at
    if window is not None and now - waiting_since >= window:
        on = WAITING_ON.get(row.status, row.status.value)
        found.append(
            StuckReason(
                kind=StuckKind.WAITING_PAST_WINDOW,
                reason=f"Waiting on {on} for {span(now - waiting_since)} (window {span(window)})",
                since=waiting_since,
            )
        )
    last = facts.last_event_at or row.opened_at
    step_ahead = row.next_step_at is not None and row.next_step_at > now
    if not step_ahead and now - last >= policy.no_progress_after:
        due = (
            f"; its next step ({row.next_step}) was due {span(now - row.next_step_at)} ago"
            if row.next_step_at is not None
            else "; nothing is scheduled"
        )
        found.append(
            StuckReason(
                kind=StuckKind.NO_PROGRESS,
                reason=f"No progress for {span(now - last)}{due}",
                since=last,
            )
        )
    return found


async def _failure_text(client: Client, failure: Failure) -> str:
    """A failure's message, decrypted (the codec moves it into the encoded attributes)."""
    copy = Failure()
    copy.CopyFrom(failure)
    try:
        error = await client.data_converter.decode_failure(copy)
    except Exception:  # an undecodable failure (another key): say so, never fail the radar
        log.warning("a pending failure could not be decoded", exc_info=True)
        return "(the failure could not be decoded)"
    text = str(getattr(error, "message", None) or error or failure.message)
    return text[:FAILURE_TEXT]


def _time(message: Any, name: str) -> datetime | None:
    return getattr(message, name).ToDatetime(UTC) if message.HasField(name) else None


_TASK_PROBLEMS = (
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
)


async def _first_task_failure(
    client: Client, case_id: str, run_id: str
) -> tuple[datetime | None, str | None]:
    """When the failing workflow task first failed, and why: the newest such event in the
    history (`WorkflowTaskFailed` with its failure, or `WorkflowTaskTimedOut`: later attempts
    are not written to history)."""
    response = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=case_id, run_id=run_id),
            maximum_page_size=10,
        ),
        retry=False,
        timeout=CALL_LIMIT,
    )
    for event in response.history.events:
        if event.event_type not in _TASK_PROBLEMS:
            continue
        at = event.event_time.ToDatetime(UTC)
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            return at, "the workflow task timed out"
        failure = event.workflow_task_failed_event_attributes.failure
        return at, await _failure_text(client, failure)
    return None, None


async def temporal_reasons(
    client: Client, row: Case, described: DescribeWorkflowExecutionResponse, now: datetime
) -> list[StuckReason]:
    """Activities on their Nth attempt and a failing workflow task, from the description."""
    policy = spec_for(row.type).stuck
    info = described.workflow_execution_info
    if info.status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
        how = WorkflowExecutionStatus.Name(info.status).removeprefix("WORKFLOW_EXECUTION_STATUS_")
        return [
            StuckReason(
                kind=StuckKind.WORKFLOW_NOT_RUNNING,
                reason=f"The index says {row.status.value}, but its workflow is "
                f"{how.lower().replace('_', ' ')}",
                since=_time(info, "close_time") or now,
            )
        ]
    found: list[StuckReason] = []
    for pending in described.pending_activities:
        if pending.attempt < policy.activity_attempts:
            continue
        failure = (
            await _failure_text(client, pending.last_failure)
            if pending.HasField("last_failure")
            else None
        )
        since = (
            _time(pending, "last_attempt_complete_time")
            or _time(pending, "last_started_time")
            or _time(pending, "scheduled_time")
            or now
        )
        name = pending.activity_type.name
        found.append(
            StuckReason(
                kind=StuckKind.ACTIVITY_RETRYING,
                reason=f"{name} is on attempt {pending.attempt}"
                + (f"; last failure: {failure}" if failure else ""),
                since=since,
                activity_type=name,
                attempt=pending.attempt,
                last_failure=failure,
            )
        )
    if described.HasField("pending_workflow_task"):
        task = described.pending_workflow_task
        if task.attempt > 1:
            run_id = described.workflow_execution_info.execution.run_id
            try:
                first_failed, message = await _first_task_failure(client, row.id, run_id)
            except RPCError:
                first_failed, message = None, None
            found.append(
                StuckReason(
                    kind=StuckKind.WORKFLOW_TASK_FAILING,
                    reason=f"The workflow task fails (attempt {task.attempt})"
                    + (f": {message}" if message else ""),
                    since=first_failed or _time(task, "original_scheduled_time") or now,
                    attempt=task.attempt,
                    last_failure=message,
                )
            )
    return found


async def _describe(client: Client, case_id: str) -> DescribeWorkflowExecutionResponse:
    return await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=case_id)
        ),
        retry=False,
        timeout=CALL_LIMIT,
    )


async def check_temporal(
    client: Client | None, rows: Sequence[Case], now: datetime, budget: timedelta
) -> TemporalPart:
    """Temporal's reasons for each row's case, a few describes at a time within `budget`."""
    part = TemporalPart()
    if not rows:
        return part
    if client is None:
        part.unchecked, part.detail = len(rows), "Temporal is not connected"
        return part
    try:
        await ensure_reachable(client)
    except Problem as problem:
        part.unchecked, part.detail = len(rows), problem.detail
        return part
    except Exception as err:  # a client that cannot connect at all (see api.errors)
        log.warning("radar: Temporal unreachable: %s", type(err).__name__)
        part.unchecked, part.detail = len(rows), "Temporal is unreachable"
        return part
    gate = asyncio.Semaphore(DESCRIBE_CONCURRENCY)
    failed: list[str] = []

    async def check(row: Case) -> None:
        async with gate:
            try:
                described = await _describe(client, row.id)
                found = await temporal_reasons(client, row, described, now)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    failed.append(row.id)
                    return
                found = [
                    StuckReason(
                        kind=StuckKind.WORKFLOW_NOT_RUNNING,
                        reason=f"The index says {row.status.value}, but Temporal has no "
                        "workflow for the case",
                        since=row.updated_at,
                    )
                ]
            except Exception as err:  # connection lost mid-way: unchecked, not a 500
                log.warning("radar: describe of %s failed: %s", row.id, type(err).__name__)
                failed.append(row.id)
                return
            part.checked += 1
            if found:
                part.reasons[row.id] = found

    tasks = [asyncio.create_task(check(row)) for row in rows]
    _, pending = await asyncio.wait(tasks, timeout=budget.total_seconds())
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    part.unchecked = len(rows) - part.checked
    if part.unchecked:
        part.detail = f"Temporal did not answer for {part.unchecked} of {len(rows)} open cases" + (
            f" within {budget.total_seconds():g} s" if pending else ""
        )
    return part


def links(settings: Settings, case_id: str) -> StuckLinks:
    quoted = quote(case_id, safe="")
    return StuckLinks(
        case=f"/cases/{quoted}",
        console=f"/console/cases/{quoted}",
        temporal=settings.trace_url(case_id),
    )


@dataclass(frozen=True)
class StuckFilters:
    kind: StuckKind | None = None
    type: CaseType | None = None
    depot_id: str | None = None
    client_id: str | None = None


async def find_stuck(
    *,
    session: AsyncSession,
    temporal: Client | None,
    settings: Settings,
    now: datetime,
    filters: StuckFilters,
    limit: int,
    offset: int,
    budget: timedelta = TEMPORAL_BUDGET,
) -> StuckList:
    """Every open case (matching `filters`) with at least one reason, oldest `since` first."""
    statement = select(Case).where(
        col(Case.status).not_in([s for s in CaseStatus if s.is_terminal])
    )
    if filters.type:
        statement = statement.where(Case.type == filters.type)
    if filters.depot_id:
        statement = statement.where(Case.depot_id == filters.depot_id)
    if filters.client_id:
        statement = statement.where(Case.client_id == filters.client_id)
    # Every column but the details (the radar does not read them; they are the bulk of a row).
    statement = statement.options(defer(cast(QueryableAttribute[Any], Case.details))).order_by(
        col(Case.updated_at).desc(), col(Case.id)
    )
    rows = list((await session.exec(statement)).all())
    facts = await _timeline_facts(session, [row.id for row in rows])

    ask_temporal = filters.kind is None or filters.kind.from_temporal
    part = (
        await check_temporal(temporal, rows[:MAX_DESCRIBED], now, budget)
        if ask_temporal
        else TemporalPart()
    )
    if ask_temporal and len(rows) > MAX_DESCRIBED:
        part.unchecked += len(rows) - MAX_DESCRIBED
        part.detail = part.detail or (
            f"only the {MAX_DESCRIBED} most recently updated open cases were checked"
        )

    items: list[StuckCase] = []
    for row in rows:
        reasons = sql_reasons(row, facts.get(row.id, TimelineFacts()), now)
        reasons += part.reasons.get(row.id, [])
        if filters.kind is not None and filters.kind not in {r.kind for r in reasons}:
            continue
        if not reasons:
            continue
        reasons.sort(key=lambda r: r.since)
        items.append(
            StuckCase(
                case_id=row.id,
                type=row.type,
                status=row.status,
                subject=row.subject,
                client_id=row.client_id,
                depot_id=row.depot_id,
                assignee=row.assignee,
                escalated=row.escalated,
                deadline_at=row.deadline_at,
                since=reasons[0].since,
                reasons=reasons,
                links=links(settings, row.id),
            )
        )
    items.sort(key=lambda item: (item.since, item.case_id))
    return StuckList(
        items=items[offset : offset + limit],
        total=len(items),
        limit=limit,
        offset=offset,
        live=part.unchecked == 0,
        temporal_detail=part.detail,
        checked=part.checked,
        unchecked=part.unchecked,
    )
