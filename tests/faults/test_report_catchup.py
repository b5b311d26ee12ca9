"""A report schedule's catch-up after a real outage: the Temporal server stopped while two of
the schedule's runs fall due, and started again on the same SQLite file. Only the run whose
nominal time is still inside the catch-up window starts, once, and sends its period's report
once (each email accepted by SendGrid exactly once).

The production schedule fires once a day with a 23 h window (shorter than the day between
runs); here the same schedule (its action, overlap and the real worker) has two nominal times
40 s apart and a 30 s window, the same relation at a scale a test can wait for."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select
from temporalio.client import (
    ScheduleCalendarSpec,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from core.bootstrap import DEMO_CLIENT_ID
from schemas.tables import Message
from tests.faults.harness import FaultStack, fault_stack
from tests.sendgrid_fake import running_fake_sendgrid

pytestmark = pytest.mark.faults

SCHEDULE = f"reports-daily-{DEMO_CLIENT_ID}"
LONDON = ZoneInfo("Europe/London")
WINDOW = dt.timedelta(seconds=30)


def at(instant: dt.datetime) -> ScheduleCalendarSpec:
    """A calendar entry that matches this one second only."""
    return ScheduleCalendarSpec(
        second=(ScheduleRange(instant.second),),
        minute=(ScheduleRange(instant.minute),),
        hour=(ScheduleRange(instant.hour),),
        day_of_month=(ScheduleRange(instant.day),),
        month=(ScheduleRange(instant.month),),
        year=(ScheduleRange(instant.year),),
        day_of_week=(ScheduleRange(0, 6),),
    )


async def schedule_exists(stack: FaultStack) -> bool:
    assert stack.env is not None
    try:
        await stack.env.client.get_schedule_handle(SCHEDULE).describe()
    except Exception:
        return False
    return True


async def test_two_runs_missed_in_an_outage_catch_up_once(tmp_path: Path):
    with running_fake_sendgrid() as sendgrid:
        async with fault_stack(tmp_path, sendgrid) as stack:
            stack.worker.start()  # it creates the demo client's report schedules as it starts
            await stack.until(lambda: schedule_exists(stack), "created the daily schedule")
            assert stack.env is not None
            handle = stack.env.client.get_schedule_handle(SCHEDULE)
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            missed, caught = now + dt.timedelta(seconds=20), now + dt.timedelta(seconds=60)

            def compressed(current: ScheduleUpdateInput) -> ScheduleUpdate:
                schedule = current.description.schedule
                return ScheduleUpdate(
                    schedule=dataclasses.replace(
                        schedule,
                        spec=ScheduleSpec(calendars=[at(missed), at(caught)], time_zone_name="UTC"),
                        policy=dataclasses.replace(schedule.policy, catchup_window=WINDOW),
                    )
                )

            await handle.update(compressed)

            async def applied() -> bool:  # the scheduler applies an update in its own time
                described = await handle.describe()
                return list(described.info.next_action_times[:2]) == [missed, caught]

            await stack.until(applied, "took the two nominal times", within=15)
            await stack.stop_temporal()
            stopped = time.monotonic()
            # down through both nominal times, back 8 s after the second
            await asyncio.sleep((caught - now).total_seconds() + 8 - (time.monotonic() - stopped))
            await stack.start_temporal()
            assert stack.env is not None
            handle = stack.env.client.get_schedule_handle(SCHEDULE)

            period = (caught.astimezone(LONDON).date() - dt.timedelta(days=1)).isoformat()
            report = f"report-daily-{DEMO_CLIENT_ID}-{period}"

            async def sent() -> bool:
                async with stack.sessions() as session:
                    rows = (
                        await session.exec(select(Message).where(Message.case_id == report))
                    ).all()
                return len(rows) == 2 and all(row.status.value == "sent" for row in rows)

            await stack.until(sent, "sent the caught-up report", within=90)
            await asyncio.sleep(5)  # time for a second run to show itself
            described = await handle.describe()
            async with stack.sessions() as session:
                rows = (await session.exec(select(Message).where(Message.case_id == report))).all()
            accepted = stack.sendgrid.accepted_keys()

    actions = list(described.info.recent_actions)
    assert [a.scheduled_at.replace(microsecond=0) for a in actions] == [caught]
    assert described.info.num_actions_missed_catchup_window >= 1  # the first one, skipped
    assert sorted(row.recipient_email for row in rows) == [
        "avery.example.demo-shop@example.com",
        "operations.demo-shop@example.com",
    ]
    for row in rows:
        assert accepted[row.key] == 1, row.key
