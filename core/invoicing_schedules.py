"""One Temporal Schedule per client with a rate agreement (`invoicing-{client_id}`), on the
billing cycle of the agreement in force today, in the client's time zone.

- **When.** Weekly: Mondays at 02:00 local time, for the Monday-to-Sunday week before.
  Monthly: the 1st at 02:00 local time, for the month before. (02:00 exists on every Monday
  and every 1st in every zone that changes its clocks on a Sunday, which is every zone that
  changes them at 02:00.) The run derives its period from the schedule's nominal time
  (`TemporalScheduledStartTime`), never from the clock.
- **Catch-up.** A run missed while Temporal was down starts when it is back, within a window
  shorter than one cycle (6 days weekly, 27 days monthly), so a long outage catches up once,
  not once per missed cycle; that run bills from the day after the client's last invoice, so
  nothing the outage skipped is left unbilled.
- **Overlap.** `BUFFER_ONE`: a run never starts while the client's previous one is still going;
  the next waits for it (one buffered at most), and each run bills from where the last ended.
- **Failure.** A failed run pauses the schedule (`pause_on_failure`): nobody is invoiced wrongly
  twice while ops look. Resume with `POST /clients/{id}/invoicing/resume`.
- **Sync.** Created or updated (idempotently: spec, action and policy; a paused schedule stays
  paused) when an agreement version is put, when the client's time zone changes, at the
  worker's start for every client, and by each run once it has invoiced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlmodel import col, select
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

from core.db import SessionFactory
from core.temporal import CLIENT_ID
from schemas.enums import BillingCycle
from schemas.invoicing import RUN_WORKFLOW, InvoicingRunInput, schedule_id, scheduled_run_id
from schemas.tables import Client as ClientRow
from schemas.tables import RateAgreementVersion

log = logging.getLogger("casedesk.schedules")

RUN_HOUR = 2
MONDAY = 1  # Temporal's day_of_week: 0 is Sunday
CATCHUP_WINDOWS = {
    BillingCycle.WEEKLY: dt.timedelta(days=6),
    BillingCycle.MONTHLY: dt.timedelta(days=27),
}
"""Shorter than one cycle (the shortest month has 28 days): a missed run catches up once."""


@dataclass(frozen=True)
class ScheduleTerms:
    """What a client's schedule is made of."""

    client_id: str
    cycle: BillingCycle
    timezone: str


def calendar(cycle: BillingCycle) -> ScheduleCalendarSpec:
    at = {"hour": (ScheduleRange(RUN_HOUR),), "minute": (ScheduleRange(0),)}
    if cycle is BillingCycle.WEEKLY:
        return ScheduleCalendarSpec(
            day_of_week=(ScheduleRange(MONDAY),),
            comment="weekly: Mondays 02:00 local, for the week before",
            **at,
        )
    return ScheduleCalendarSpec(
        day_of_month=(ScheduleRange(1),),
        comment="monthly: the 1st at 02:00 local, for the month before",
        **at,
    )


def _only(ranges: Sequence[ScheduleRange], value: int) -> bool:
    """The ranges hold exactly `value` (the server returns `1` as `1-1/1`)."""
    return len(ranges) == 1 and ranges[0].start == value and ranges[0].end in (0, value)


def cycle_of(spec: ScheduleSpec) -> BillingCycle | None:
    """The billing cycle a schedule's spec runs on (None: not one of ours)."""
    for entry in spec.calendars:
        if _only(entry.day_of_month, 1):
            return BillingCycle.MONTHLY
        if _only(entry.day_of_week, MONDAY):
            return BillingCycle.WEEKLY
    return None


def schedule_for(terms: ScheduleTerms, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RUN_WORKFLOW,
            InvoicingRunInput(client_id=terms.client_id, cycle=terms.cycle),
            id=scheduled_run_id(terms.client_id),
            task_queue=task_queue,
            static_summary=f"Invoicing run · client {terms.client_id} · {terms.cycle.value}",
            static_details=(
                f"Invoices client `{terms.client_id}`'s delivered stops of the last "
                f"{terms.cycle.value} period and opens an unpaid-invoice case for each invoice."
                f"\n\nRuns {calendar(terms.cycle).comment} (times in {terms.timezone})."
            ),
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(CLIENT_ID, terms.client_id)]
            ),
        ),
        spec=ScheduleSpec(calendars=[calendar(terms.cycle)], time_zone_name=terms.timezone),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.BUFFER_ONE,
            catchup_window=CATCHUP_WINDOWS[terms.cycle],
            pause_on_failure=True,
        ),
        state=ScheduleState(note=f"invoices {terms.client_id} {terms.cycle.value}"),
    )


async def ensure_schedule(temporal: Client, terms: ScheduleTerms, task_queue: str) -> bool:
    """Create the client's schedule, or bring an existing one to these terms (its paused
    state and note are kept). True when it was created."""
    wanted = schedule_for(terms, task_queue)
    try:
        await temporal.create_schedule(schedule_id(terms.client_id), wanted)
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

    await temporal.get_schedule_handle(schedule_id(terms.client_id)).update(updated)
    return False


async def terms_for(
    sessions: SessionFactory, client_id: str, now: dt.datetime
) -> ScheduleTerms | None:
    """The client's schedule terms: the billing cycle of the agreement version in force today
    in its time zone (the first version's while none is in force yet); None without one."""
    async with sessions() as session:
        client = await session.get(ClientRow, client_id)
        if client is None:
            return None
        versions = (
            await session.exec(
                select(RateAgreementVersion)
                .where(col(RateAgreementVersion.client_id) == client_id)
                .order_by(col(RateAgreementVersion.effective_from))
            )
        ).all()
    if not versions:
        return None
    today = now.astimezone(ZoneInfo(client.timezone)).date()
    in_force = [v for v in versions if v.effective_from <= today] or [versions[0]]
    return ScheduleTerms(client.id, in_force[-1].billing_cycle, client.timezone)


async def sync_client_schedule(
    temporal: Client, sessions: SessionFactory, client_id: str, *, task_queue: str, now: dt.datetime
) -> ScheduleTerms | None:
    """The client's schedule in step with its agreement and time zone (none without an
    agreement). Returns the terms it now runs on."""
    terms = await terms_for(sessions, client_id, now)
    if terms is not None:
        created = await ensure_schedule(temporal, terms, task_queue)
        log.info(
            "invoicing schedule for %s %s: %s in %s",
            client_id,
            "created" if created else "updated",
            terms.cycle.value,
            terms.timezone,
        )
    return terms


async def sync_all_schedules(
    temporal: Client, sessions: SessionFactory, *, task_queue: str, now: dt.datetime
) -> Sequence[ScheduleTerms]:
    """Every client with an agreement gets its schedule (at the worker's start)."""
    async with sessions() as session:
        client_ids = (await session.exec(select(RateAgreementVersion.client_id).distinct())).all()
    synced = []
    for client_id in sorted(client_ids):
        terms = await sync_client_schedule(
            temporal, sessions, client_id, task_queue=task_queue, now=now
        )
        if terms is not None:
            synced.append(terms)
    return synced
