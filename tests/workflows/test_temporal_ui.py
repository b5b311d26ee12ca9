"""What the Temporal UI shows of a case, read from its history (decoded with the client's
converter, as the UI does through the codec server) and its current details."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.cases import CaseState
from schemas.enums import CaseStatus, FailureReason
from tests.workflows.claim_fakes import ClaimWorld
from tests.workflows.test_failed_delivery import (
    case_input,
    open_case,
    state,
    unique,
    wait_for_status,
)
from tests.workflows.test_unpaid_invoice import current_details
from workflows.damage_claim import DamageClaimWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow


@pytest.fixture
async def worker(time_env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[FailedDeliveryWorkflow, DamageClaimWorkflow],
        activities=ClaimWorld().activities(),
    ) as running:
        yield running


async def decoded(env: WorkflowEnvironment, payload: Payload) -> str:
    (text,) = await env.client.data_converter.decode([payload], [str])
    return str(text)


async def summaries(env: WorkflowEnvironment, handle: WorkflowHandle, attribute: str) -> list[str]:
    """The user-metadata summaries of the history's events that have `attribute` set."""
    events: Sequence[HistoryEvent] = (await handle.fetch_history()).events
    return [
        await decoded(env, event.user_metadata.summary)
        for event in events
        if event.HasField(attribute) and event.user_metadata.HasField("summary")  # type: ignore[arg-type]
    ]


async def first_timer(env: WorkflowEnvironment, handle: WorkflowHandle) -> str:
    """The summary of the first timer the case starts (polled: the status a test waits for
    is set just before the wait that starts the timer)."""
    for _ in range(200):
        if timers := await summaries(env, handle, "timer_started_event_attributes"):
            return timers[0]
        await asyncio.sleep(0.02)
    raise AssertionError("the case started no timer")


async def with_next_step(handle: WorkflowHandle) -> CaseState:
    """The state once the case waits on its first ladder step (set just after the status)."""
    for _ in range(200):
        current = await state(handle)
        if current.next_step_at is not None:
            return current
        await asyncio.sleep(0.02)
    raise AssertionError("the case has no next step")


def shown(at: datetime, zone: str) -> str:
    """The expected rendering, computed independently of `schemas.ui_text`."""
    local = at.astimezone(ZoneInfo(zone))
    return local.strftime("%a ") + str(local.day) + local.strftime(" %b %H:%M %Z")


async def test_timers_and_activities_carry_the_ladders_labels(time_env, task_queue, worker):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))

    timer = await first_timer(time_env, handle)
    activities = await summaries(time_env, handle, "activity_task_scheduled_event_attributes")

    assert timer == "remind the customer"
    assert any(s.startswith("send: ") and s.endswith("(a1/customer-notice)") for s in activities)
    assert any(s.startswith("record: waiting_on_customer, v") for s in activities)


async def test_a_child_claim_starts_with_a_static_summary_and_details(time_env, task_queue, worker):
    inp = case_input(unique("S"), reason=FailureReason.DAMAGED).model_copy(
        update={"timezone": "Europe/London"}
    )
    handle = await open_case(time_env, task_queue, inp)
    claim = time_env.client.get_workflow_handle(f"damage-claim-{inp.shipment_id}")
    await wait_for_status(claim, CaseStatus.GATHERING_EVIDENCE)

    started = (await claim.fetch_history()).events[0].user_metadata
    details = await decoded(time_env, started.details)

    assert await decoded(time_env, started.summary) == (
        f"Damage claim · shipment {inp.shipment_id} · demo-shop"
    )
    deadline = inp.attempt.attempted_at + inp.claim_policy.filing_window
    assert f"Filing deadline: {shown(deadline, 'Europe/London')}" in details
    assert "depot `depot-north`" in details and "filing window 72 h" in details
    assert "Ada" not in details and "Main St" not in details
    assert handle.id in details
    assert await first_timer(time_env, claim) == "reminder 1 to the driver and customer (evidence)"


async def test_current_details_say_status_whom_next_step_and_when_in_local_time(
    time_env, task_queue, worker
):
    inp = case_input(unique("S")).model_copy(update={"timezone": "America/New_York"})
    handle = await open_case(time_env, task_queue, inp)
    current = await with_next_step(handle)
    assert current.next_step_at is not None and current.deadline_at is not None

    details = await current_details(handle)

    assert details.startswith("**Waiting on customer**: ")
    assert "Waiting on the customer (how to receive the parcel)" in details
    local = shown(current.next_step_at, "America/New_York")
    assert local.endswith((" EST", " EDT"))
    assert f"Next: remind the customer, {local}" in details
    assert f"Deadline: {shown(current.deadline_at, 'America/New_York')}" in details
    assert "Ada" not in details and "ada@example.com" not in details


async def test_an_unknown_time_zone_shows_times_in_utc(time_env, task_queue, worker):
    inp = case_input(unique("S")).model_copy(update={"timezone": "Mars/Olympus_Mons"})
    handle = await open_case(time_env, task_queue, inp)
    current = await with_next_step(handle)
    assert current.next_step_at is not None

    assert f"Next: remind the customer, {shown(current.next_step_at, 'UTC')}" in (
        await current_details(handle)
    )


async def test_a_claim_names_its_missing_evidence(time_env, task_queue, worker):
    inp = case_input(unique("S"), reason=FailureReason.DAMAGED)
    await open_case(time_env, task_queue, inp)
    claim = time_env.client.get_workflow_handle(f"damage-claim-{inp.shipment_id}")
    await wait_for_status(claim, CaseStatus.GATHERING_EVIDENCE)

    details = await current_details(claim)

    assert "Missing (" in details and "damage photos" in details
