"""Two Temporal Schedules per client that gets reports: `reports-daily-{client_id}` and
`reports-weekly-{client_id}`, at the client's `reporting.hour` in its time zone.

- **When.** Daily: every day at the hour, for the local day before. Weekly: Mondays at the
  hour, for the ISO week before. The run derives its period from the schedule's nominal time
  (`TemporalScheduledStartTime`), never from the clock. (An hour the clocks skip on the night
  they change has no local time; Temporal then runs it at the first instant after the gap,
  still on that local day, so its period is the same.)
- **Catch-up.** A run missed while Temporal was down starts when it is back, within a window
  shorter than one cycle (23 h daily, 6 days weekly): a long outage catches up the latest
  missed run once, not once per missed day, and each missed run's own period is never sent
  twice (the report is idempotent by client, kind and period).
- **Overlap.** `BUFFER_ONE`: a run never starts while the previous one is going.
- **Failure.** A failed run does not pause the schedule: nothing wrong was sent, and the next
  day's run may well succeed; the failure shows in `GET /clients/{id}/reports` and in the
  Temporal UI.
- **Sync.** Created, updated (spec, action, policy; a paused schedule stays paused) or deleted
  (the report turned off) when the client's `reporting` settings or its time zone change, and
  for every client at the worker's start.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import select
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from core.db import SessionFactory
from core.temporal import CLIENT_ID
from schemas.reporting import (
    RUN_WORKFLOW,
    ReportKind,
    ReportRunInput,
    reporting_of,
    schedule_id,
    scheduled_run_id,
)
from schemas.tables import Client as ClientRow

log = logging.getLogger("casedesk.schedules")

MONDAY = 1  # Temporal's day_of_week: 0 is Sunday
CATCHUP_WINDOWS = {
    ReportKind.DAILY: dt.timedelta(hours=23),
    ReportKind.WEEKLY: dt.timedelta(days=6),
}
"""Shorter than one cycle: of the runs an outage missed, only the latest is caught up."""


@dataclass(frozen=True)
class ReportScheduleTerms:
    client_id: str
    kind: ReportKind
    timezone: str
    hour: int


def calendar(kind: ReportKind, hour: int) -> ScheduleCalendarSpec:
    at = {"hour": (ScheduleRange(hour),), "minute": (ScheduleRange(0),)}
    if kind is ReportKind.WEEKLY:
        return ScheduleCalendarSpec(
            day_of_week=(ScheduleRange(MONDAY),),
            comment=f"weekly: Mondays {hour:02d}:00 local, for the ISO week before",
            **at,
        )
    return ScheduleCalendarSpec(
        day_of_week=(ScheduleRange(0, 6),),
        comment=f"daily: {hour:02d}:00 local, for the day before",
        **at,
    )


def schedule_for(terms: ReportScheduleTerms, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RUN_WORKFLOW,
            ReportRunInput(client_id=terms.client_id, kind=terms.kind),
            id=scheduled_run_id(terms.kind, terms.client_id),
            task_queue=task_queue,
            static_summary=f"{terms.kind.value.capitalize()} report · client {terms.client_id}",
            static_details=(
                f"Builds and sends client `{terms.client_id}`'s {terms.kind.value} report."
                f"\n\nRuns {calendar(terms.kind, terms.hour).comment} "
                f"(times in {terms.timezone})."
            ),
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(CLIENT_ID, terms.client_id)]
            ),
        ),
        spec=ScheduleSpec(
            calendars=[calendar(terms.kind, terms.hour)], time_zone_name=terms.timezone
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.BUFFER_ONE,
            catchup_window=CATCHUP_WINDOWS[terms.kind],
            pause_on_failure=False,
        ),
        state=ScheduleState(note=f"{terms.kind.value} report of {terms.client_id}"),
    )


async def ensure_schedule(temporal: Client, terms: ReportScheduleTerms, task_queue: str) -> bool:
    """Create the schedule, or bring an existing one to these terms (its paused state and
    note are kept). True when it was created."""
    wanted = schedule_for(terms, task_queue)
    try:
        await temporal.create_schedule(schedule_id(terms.kind, terms.client_id), wanted)
        return True
    except ScheduleAlreadyRunningError:
        pass

    def updated(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = dataclasses.replace(
            current.description.schedule,
            action=wanted.action,
            spec=wanted.spec,
            policy=wanted.policy,
        )
        return ScheduleUpdate(schedule=schedule)

    await temporal.get_schedule_handle(schedule_id(terms.kind, terms.client_id)).update(updated)
    return False


async def remove_schedule(temporal: Client, kind: ReportKind, client_id: str) -> bool:
    """Delete the schedule of a report the client no longer gets; True when there was one."""
    try:
        await temporal.get_schedule_handle(schedule_id(kind, client_id)).delete()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def sync_client_reports(
    temporal: Client, sessions: SessionFactory, client_id: str, *, task_queue: str
) -> list[ReportScheduleTerms]:
    """The client's two schedules in step with its `reporting` settings and time zone: each
    report it gets has its schedule, each it does not has none. Returns the terms now run."""
    async with sessions() as session:
        client = await session.get(ClientRow, client_id)
    if client is None:
        return []
    settings = reporting_of(client.reporting)
    running = []
    for kind in ReportKind:
        if settings.enabled(kind):
            terms = ReportScheduleTerms(client.id, kind, client.timezone, settings.hour)
            created = await ensure_schedule(temporal, terms, task_queue)
            log.info(
                "%s report schedule of %s %s: %02d:00 %s",
                kind.value,
                client.id,
                "created" if created else "updated",
                settings.hour,
                client.timezone,
            )
            running.append(terms)
        elif await remove_schedule(temporal, kind, client.id):
            log.info("%s report schedule of %s deleted (turned off)", kind.value, client.id)
    return running


async def sync_all_report_schedules(
    temporal: Client, sessions: SessionFactory, *, task_queue: str
) -> Sequence[ReportScheduleTerms]:
    """At the worker's start: every client with a report turned on gets its schedules."""
    async with sessions() as session:
        rows = (await session.exec(select(ClientRow.id, ClientRow.reporting))).all()
    synced: list[ReportScheduleTerms] = []
    for client_id, stored in sorted(rows, key=lambda row: row[0]):
        settings = reporting_of(stored)
        if settings.daily or settings.weekly:
            synced += await sync_client_reports(
                temporal, sessions, client_id, task_queue=task_queue
            )
    return synced
