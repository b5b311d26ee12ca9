"""Bounded cases: a case continues as new when its history passes the policy's event budget
(or Temporal suggests it), and the continued run is the same case. Each test forces it in the
middle of a case with a reminder pending and checks that the case goes on as one: every timer
fires once, no message is asked for twice, the timeline is one unbroken sequence."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.cases import CaseSnapshot, Customer
from schemas.claims import DamageClaimInput, DecisionInput
from schemas.documents import DocumentKind
from schemas.enums import CaseStatus, Resolution
from schemas.policies import ClaimPolicy
from tests.workflows.claim_fakes import ClaimWorld
from tests.workflows.polling import projected
from tests.workflows.test_damage_claim import PEOPLE_ITEMS, supply
from tests.workflows.test_failed_delivery import (
    case_input,
    choice,
    outcome,
    unique,
)
from workflows.damage_claim import DamageClaimWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow

HOUR = timedelta(hours=1)
BUDGET = 20  # the least a policy allows: a case continues at almost every wait


@pytest.fixture
def world() -> ClaimWorld:
    return ClaimWorld()


@pytest.fixture
async def worker(time_env, task_queue, world):
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[FailedDeliveryWorkflow, DamageClaimWorkflow],
        activities=world.activities(),
    ) as running:
        yield running


async def runs(env: WorkflowEnvironment, workflow_id: str) -> int:
    """How many runs the case has had: follow the continue-as-new chain from the first."""
    handle = env.client.get_workflow_handle(workflow_id)
    first = await handle.describe()
    run_id: str | None = first.raw_description.workflow_execution_info.first_run_id
    count = 0
    while run_id:
        count += 1
        history = await env.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            break
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return count


async def continued(env: WorkflowEnvironment, workflow_id: str, at_least: int = 2) -> int:
    """Wait until the case has had `at_least` runs; how many it has."""
    for _ in range(200):
        count = await runs(env, workflow_id)
        if count >= at_least:
            return count
        await asyncio.sleep(0.02)
    raise AssertionError(f"{workflow_id} never continued as new ({count} run)")


def assert_one_unbroken_timeline(world: ClaimWorld, case_id: str) -> list[str]:
    """The projection holds seq 1..n with no gap, and the case was opened once."""
    events = world.case_timelines[case_id]
    assert sorted(events) == list(range(1, len(events) + 1))
    kinds = [events[seq].kind for seq in sorted(events)]
    assert kinds.count("opened") == 1
    return kinds


def assert_each_message_asked_once(world: ClaimWorld) -> None:
    repeated = {key: n for key, n in Counter(world.send_log).items() if n > 1}
    assert repeated == {}


async def test_a_failed_delivery_continues_as_new_while_waiting_on_the_customer(
    time_env, task_queue, worker, world
):
    inp = case_input(unique("CAN"), history_event_budget=BUDGET)
    handle = await time_env.client.start_workflow(
        FailedDeliveryWorkflow.run,
        inp,
        id=f"failed-delivery-{inp.shipment_id}",
        task_queue=task_queue,
    )
    await projected(world, handle.id, lambda s: s.status is CaseStatus.WAITING_ON_CUSTOMER)
    await continued(time_env, handle.id)  # before the 24 h reminder fired

    await time_env.sleep(49 * HOUR)  # the reminder (24 h) and the escalation (48 h) come due
    current = await projected(world, handle.id, lambda s: s.escalated)
    prefix = f"{handle.id}/a1/"
    assert [k for k in world.send_log if k.startswith(prefix)] == [
        f"{prefix}customer-notice",
        f"{prefix}customer-reminder",
        f"{prefix}dispatcher-escalation",
    ]
    assert current.status is CaseStatus.WAITING_ON_CUSTOMER
    assert current.deadline_at is not None

    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice())
    await projected(world, handle.id, lambda s: s.status is CaseStatus.REDELIVERY_SCHEDULED)
    await time_env.sleep(HOUR)
    await handle.execute_update(
        FailedDeliveryWorkflow.record_delivery_outcome, outcome("delivered")
    )
    final: CaseSnapshot = await handle.result()

    assert final.resolution is Resolution.DELIVERED
    assert await runs(time_env, handle.id) >= 3
    assert final.details["fees_cents"] == 1700  # the attempt was charged once, not per run
    assert len(world.attempts) == 1
    kinds = assert_one_unbroken_timeline(world, handle.id)
    assert kinds.count("attempt_failed") == 1 and kinds.count("escalated") == 1
    assert_each_message_asked_once(world)


async def test_a_cancellation_reaches_a_case_that_continued_as_new(
    time_env, task_queue, worker, world
):
    inp = case_input(unique("CAN"), history_event_budget=BUDGET)
    handle = await time_env.client.start_workflow(
        FailedDeliveryWorkflow.run,
        inp,
        id=f"failed-delivery-{inp.shipment_id}",
        task_queue=task_queue,
    )
    await projected(world, handle.id, lambda s: s.status is CaseStatus.WAITING_ON_CUSTOMER)
    await time_env.sleep(25 * HOUR)
    await projected(world, handle.id, lambda s: s.next_step == "escalate to the dispatcher")

    from schemas.cases import CancelInput  # noqa: PLC0415

    await handle.execute_update(FailedDeliveryWorkflow.cancel, CancelInput(reason="collected"))
    final = await handle.result()

    assert final.status is CaseStatus.CANCELLED
    assert await runs(time_env, handle.id) >= 2
    assert "dispatcher-escalation" not in " ".join(world.send_log)
    assert_one_unbroken_timeline(world, handle.id)


async def open_bounded_claim(
    env: WorkflowEnvironment, task_queue: str, world: ClaimWorld
) -> WorkflowHandle[DamageClaimWorkflow, CaseSnapshot]:
    shipment = f"S-{uuid.uuid4().hex[:8]}"
    now = await env.get_current_time()
    handle = await env.client.start_workflow(
        DamageClaimWorkflow.run,
        DamageClaimInput(
            shipment_id=shipment,
            client_id="demo-shop",
            depot_id="depot-north",
            claim_type="damaged",
            reported_by="customer",
            delivery_event_at=now - HOUR,
            declared_value=Decimal("129.90"),
            currency="GBP",
            description="Box crushed",
            customer=Customer(name="Ada Customer", email="ada@example.com"),
            driver_id="driver-001",
            policy=ClaimPolicy(history_event_budget=BUDGET),
        ),
        id=f"damage-claim-{shipment}",
        task_queue=task_queue,
    )
    await projected(
        world, handle.id, lambda s: s.status is CaseStatus.GATHERING_EVIDENCE and s.version > 2
    )
    return handle


async def test_a_claim_continues_as_new_with_reminders_pending_and_follow_ups_counted(
    time_env, task_queue, worker, world
):
    handle = await open_bounded_claim(time_env, task_queue, world)
    await continued(time_env, handle.id)  # before reminder 1 (24 h)

    await time_env.sleep(50 * HOUR)  # reminders at 24 h and 48 h after the event
    current = await projected(
        world, handle.id, lambda s: s.next_step == "escalate to the claims desk"
    )
    reminders = [k for k in world.send_log if "/reminder-" in k]
    assert reminders == [
        f"{handle.id}/r1/reminder-1/driver",
        f"{handle.id}/r1/reminder-1/customer",
        f"{handle.id}/r1/reminder-2/driver",
        f"{handle.id}/r1/reminder-2/customer",
    ]
    assert current.deadline_at is not None

    await supply(handle, *PEOPLE_ITEMS)
    await projected(world, handle.id, lambda s: s.status is CaseStatus.AWAITING_DECISION)
    await time_env.sleep(timedelta(days=15))  # two weekly follow-ups to the claims contact
    await projected(
        world,
        handle.id,
        lambda s: s.next_step_at is not None and "follow up" in (s.next_step or ""),
    )
    follow_ups = [k for k in world.send_log if "/follow-up-" in k]
    assert follow_ups == [f"{handle.id}/r1/follow-up-1", f"{handle.id}/r1/follow-up-2"]

    await handle.execute_update(
        DamageClaimWorkflow.record_decision,
        DecisionInput(decision="approved", amount=Decimal("129.90")),
    )
    final = await handle.result()

    assert final.resolution is Resolution.PAID
    assert await runs(time_env, handle.id) >= 3
    assert len(world.packages) == 1  # filed once
    assert final.details["checklist"] == {
        kind.value: "present"
        for kind in (
            DocumentKind.ATTEMPT_RECORD,
            DocumentKind.PROOF_OF_DELIVERY,
            DocumentKind.DAMAGE_PHOTOS,
            DocumentKind.CUSTOMER_ATTESTATION,
            DocumentKind.PROOF_OF_VALUE,
        )
    }
    kinds = assert_one_unbroken_timeline(world, handle.id)
    assert kinds.count("document_added") == 5
    assert_each_message_asked_once(world)
