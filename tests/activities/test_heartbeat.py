"""Activities that may take a while heartbeat while they work, so Temporal retries one lost
with its worker within its heartbeat timeout instead of its whole time limit."""

from __future__ import annotations

import asyncio

from activities.email_backends import OutgoingEmail
from activities.heartbeat import HEARTBEAT_EVERY_SECONDS, heartbeating
from tests.activities.test_messaging import messaging, notice
from workflows.case import DOCUMENT_OPTIONS, MESSAGE_OPTIONS, RECORD_OPTIONS


async def test_the_body_is_beaten_for_while_it_runs_and_no_longer(activity_env):
    beats: list[tuple[object, ...]] = []
    activity_env.on_heartbeat = lambda *details: beats.append(details)

    async def work() -> None:
        async with heartbeating(every=0.01):
            await asyncio.sleep(0.1)
        done = len(beats)
        await asyncio.sleep(0.05)
        assert len(beats) == done  # the beating stopped with the body

    await activity_env.run(work)

    assert len(beats) >= 5


class SlowBackend:
    name = "slow"

    async def send(self, email: OutgoingEmail) -> str:
        await asyncio.sleep(0.05)
        return "slow-1"


async def test_sending_an_email_heartbeats(reference_data, activity_env):
    beats: list[tuple[object, ...]] = []
    activity_env.on_heartbeat = lambda *details: beats.append(details)

    result = await activity_env.run(messaging(reference_data, SlowBackend()).send_message, notice())

    assert result.status.value == "sent"
    assert beats, "send_message never heartbeated"


def test_heartbeating_activities_have_a_heartbeat_timeout_above_the_beat():
    for options in (MESSAGE_OPTIONS, DOCUMENT_OPTIONS):
        assert options["heartbeat_timeout"].total_seconds() >= 3 * HEARTBEAT_EVERY_SECONDS
        assert options["heartbeat_timeout"] < options["start_to_close_timeout"]


def test_database_activities_outlast_the_databases_lock_timeout():
    from core.db import LOCK_TIMEOUT_SECONDS

    assert RECORD_OPTIONS["start_to_close_timeout"].total_seconds() >= 3 * LOCK_TIMEOUT_SECONDS
