"""The failed-delivery case in simulated time: every timer path and every update rule."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.temporal import CASE_STATUS, CASE_TYPE, CLIENT_ID, DEADLINE_AT, ESCALATED
from schemas.cases import (
    Address,
    AssignInput,
    CancelInput,
    CaseSnapshot,
    CaseState,
    Customer,
    DeliveryOutcomeReport,
    EscalateInput,
    FailedAttempt,
    FailedAttemptReport,
    FailedDeliveryInput,
    NoteInput,
    RedeliveryChoice,
)
from schemas.claims import DamageClaimInput
from schemas.enums import CaseStatus, FailureReason, Resolution, ShipmentStatus
from schemas.policies import ClaimPolicy, FailedDeliveryPolicy
from tests.workflows.claim_fakes import ClaimWorld
from tests.workflows.fakes import FakeWorld
from workflows.damage_claim import DamageClaimWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow

HOUR = timedelta(hours=1)


@pytest.fixture
def world() -> ClaimWorld:
    return ClaimWorld()  # the failed-delivery fakes plus the claim's (a damaged parcel opens one)


@pytest.fixture
async def worker(
    time_env: WorkflowEnvironment, task_queue: str, world: FakeWorld
) -> AsyncIterator[Worker]:
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[FailedDeliveryWorkflow, DamageClaimWorkflow],
        activities=world.activities(),
    ) as running:
        yield running


def case_input(
    shipment_id: str,
    *,
    reason: FailureReason = FailureReason.NOT_HOME,
    attempt: int = 1,
    **policy: object,
) -> FailedDeliveryInput:
    return FailedDeliveryInput(
        shipment_id=shipment_id,
        client_id="demo-shop",
        depot_id="depot-north",
        customer=Customer(name="Ada Customer", email="ada@example.com"),
        address=Address(line1="1 Main St", city="Springfield", postal_code="12345"),
        attempt=FailedAttempt(
            attempt_number=attempt,
            reason=reason,
            driver_id="drv-1",
            attempted_at=datetime.now(UTC),
        ),
        policy=FailedDeliveryPolicy(**policy),
        opened_by="ops:test",
    )


async def open_case(
    env: WorkflowEnvironment, task_queue: str, inp: FailedDeliveryInput
) -> WorkflowHandle[FailedDeliveryWorkflow, CaseSnapshot]:
    handle = await env.client.start_workflow(
        FailedDeliveryWorkflow.run,
        inp,
        id=f"failed-delivery-{inp.shipment_id}",
        task_queue=task_queue,
    )
    await wait_for_status(handle, CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.CLOSED)
    return handle


async def state(handle: WorkflowHandle) -> CaseState:
    return await handle.query(FailedDeliveryWorkflow.state)


async def wait_for_status(handle: WorkflowHandle, *statuses: CaseStatus) -> CaseState:
    for _ in range(200):
        current = await state(handle)
        if current.status in statuses:
            return current
        await asyncio.sleep(0.02)
    raise AssertionError(f"case stayed {current.status}, expected one of {statuses}")


def choice(attempt: int = 1, **fields: object) -> RedeliveryChoice:
    values: dict[str, object] = {
        "option": "neighbour",
        "neighbour_name": "Bob",
        "neighbour_address": "3 Main St",
    }
    values.update(fields)
    return RedeliveryChoice(attempt_number=attempt, **values)


def outcome(result: str, **fields: object) -> DeliveryOutcomeReport:
    return DeliveryOutcomeReport(outcome=result, attempted_at=datetime.now(UTC), **fields)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


# --- opening ----------------------------------------------------------------------------------


async def test_the_note_taken_with_an_attempt_is_on_the_timeline(
    time_env, task_queue, worker, world
):
    opening = case_input(unique("S"))
    noted = opening.attempt.model_copy(update={"note": "Gate code changed; call first"})
    opening = opening.model_copy(update={"attempt": noted})

    handle = await open_case(time_env, task_queue, opening)
    await wait_for_status(handle, CaseStatus.WAITING_ON_CUSTOMER)

    failed = [e for e in world.timeline.values() if e.kind == "attempt_failed"]
    assert [e.summary for e in failed] == [
        "Attempt 1 failed: Nobody was there to receive the parcel. "
        "Note: “Gate code changed; call first”"
    ]


async def test_opening_records_the_attempt_fee_and_emails_the_customer_a_link(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    current = await state(handle)

    assert current.status is CaseStatus.WAITING_ON_CUSTOMER
    assert [a.fee_cents for a in world.attempts] == [1700]
    notice = world.sent[f"{handle.id}/a1/customer-notice"]
    assert notice.to.email == "ada@example.com"
    assert notice.link is not None and notice.link.purpose == "reschedule"
    assert notice.link.expires_at == current.deadline_at
    # The 5-day window runs from the moment the customer was asked.
    assert timedelta(0) <= current.deadline_at - (current.opened_at + timedelta(days=5)) < HOUR
    assert "redelivery" in current.allowed_actions
    assert [e.kind for e in world.events(current)][:2] == ["opened", "attempt_failed"]


async def test_search_attributes_carry_type_status_client_deadline_and_no_personal_data(
    time_env, task_queue, worker
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    described = await handle.describe()
    attrs = described.typed_search_attributes
    current = await state(handle)

    assert attrs.get(CASE_TYPE) == "failed_delivery"
    assert attrs.get(CASE_STATUS) == "waiting_on_customer"
    assert attrs.get(CLIENT_ID) == "demo-shop"
    assert attrs.get(ESCALATED) is False
    deadline = attrs.get(DEADLINE_AT)
    assert deadline is not None and current.deadline_at is not None
    assert abs(deadline - current.deadline_at) < timedelta(seconds=1)
    raw = str(described.raw_description.workflow_execution_info.search_attributes)
    assert "ada@example.com" not in raw and "Ada Customer" not in raw
    assert "ada@example.com" not in handle.id


# --- timers -----------------------------------------------------------------------------------


async def test_customer_is_reminded_after_24_hours_not_before(time_env, task_queue, worker, world):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))

    await time_env.sleep(23 * HOUR)
    assert f"{handle.id}/a1/customer-reminder" not in world.sent
    await time_env.sleep(2 * HOUR)
    await wait_for_message(world, f"{handle.id}/a1/customer-reminder")
    assert (await state(handle)).escalated is False


async def test_dispatcher_is_told_after_48_hours(time_env, task_queue, worker, world):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))

    await time_env.sleep(47 * HOUR)
    assert world.sent_to("dispatcher") == []
    await time_env.sleep(2 * HOUR)
    await wait_for_message(world, f"{handle.id}/a1/dispatcher-escalation")
    current = await state(handle)
    assert current.escalated is True
    assert "No answer from the customer 48 h" in (current.escalation_reason or "")
    assert (await handle.describe()).typed_search_attributes.get(ESCALATED) is True


async def test_no_answer_within_the_window_returns_the_parcel_to_the_sender(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))

    final = await handle.result()  # time skips through reminder, escalation and the window

    assert final.status is CaseStatus.CLOSED
    assert final.resolution is Resolution.RETURNED_TO_SENDER
    assert world.shipment_status == [ShipmentStatus.RETURNING_TO_SENDER]
    assert final.closed_at is not None
    assert final.closed_at - final.opened_at >= timedelta(days=5)
    assert final.subject.endswith(": returned to sender after 1 failed attempt")
    assert "failed_delivery/return_to_sender_client" in world.templates
    assert "failed_delivery/return_to_sender_customer" in world.templates
    assert "failed_delivery/customer_reminder" in world.templates


async def test_refused_parcel_returns_to_sender_at_once(time_env, task_queue, worker, world):
    handle = await time_env.client.start_workflow(
        FailedDeliveryWorkflow.run,
        case_input(unique("S"), reason=FailureReason.REFUSED),
        id=unique("failed-delivery"),
        task_queue=task_queue,
    )
    final = await handle.result()

    assert final.resolution is Resolution.RETURNED_TO_SENDER
    assert final.closed_at is not None and final.closed_at - final.opened_at < HOUR
    assert "failed_delivery/customer_notice" not in world.templates


async def test_third_failed_attempt_returns_to_sender(time_env, task_queue, worker, world):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    for attempt in (1, 2):
        await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice(attempt))
        await wait_for_status(handle, CaseStatus.REDELIVERY_SCHEDULED)
        await handle.execute_update(
            FailedDeliveryWorkflow.record_delivery_outcome,
            outcome("failed", reason="not_home"),
        )
        if attempt == 1:
            await wait_for_status(handle, CaseStatus.WAITING_ON_CUSTOMER)

    final = await handle.result()
    assert final.resolution is Resolution.RETURNED_TO_SENDER
    assert [a.attempt.attempt_number for a in world.attempts] == [1, 2, 3]
    assert final.details["fees_cents"] == 3 * 1700


async def test_attempt_limit_comes_from_the_policy_snapshot(time_env, task_queue, worker, world):
    handle = await time_env.client.start_workflow(
        FailedDeliveryWorkflow.run,
        case_input(unique("S"), attempt=2, max_attempts=2),
        id=unique("failed-delivery"),
        task_queue=task_queue,
    )
    final = await handle.result()
    assert final.resolution is Resolution.RETURNED_TO_SENDER
    assert "attempt 2 of 2 failed" in " ".join(e.summary for e in world.timeline.values())


# --- the customer answers ---------------------------------------------------------------------


async def test_answer_before_the_reminder_books_confirms_and_notifies_the_client(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    await time_env.sleep(2 * HOUR)

    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice())
    current = await wait_for_status(handle, CaseStatus.REDELIVERY_SCHEDULED)
    await time_env.sleep(30 * HOUR)

    assert world.bookings[0].choice.neighbour_name == "Bob"
    assert current.deadline_at == datetime.combine(
        world.bookings[0].decided_at.date() + timedelta(days=1),
        datetime.min.time().replace(hour=21),
        tzinfo=UTC,
    )
    assert "failed_delivery/redelivery_confirmation" in world.sent_to("customer")
    assert world.sent_to("client_contact") == ["failed_delivery/client_redelivery_notice"]
    assert "failed_delivery/customer_reminder" not in world.templates


async def test_answer_after_the_reminder_stops_the_escalation(time_env, task_queue, worker, world):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    await time_env.sleep(30 * HOUR)
    await wait_for_message(world, f"{handle.id}/a1/customer-reminder")

    await handle.execute_update(
        FailedDeliveryWorkflow.choose_redelivery,
        choice(
            option="redelivery_window",
            date=(datetime.now(UTC) + timedelta(days=3)).date(),
            window="morning",
        ),
    )
    await wait_for_status(handle, CaseStatus.REDELIVERY_SCHEDULED)
    await time_env.sleep(30 * HOUR)

    assert world.sent_to("dispatcher") == []
    assert (await state(handle)).escalated is False


async def test_delivered_outcome_closes_the_case(time_env, task_queue, worker, world):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice())
    await wait_for_status(handle, CaseStatus.REDELIVERY_SCHEDULED)

    await handle.execute_update(
        FailedDeliveryWorkflow.record_delivery_outcome, outcome("delivered")
    )
    final = await handle.result()

    assert final.status is CaseStatus.CLOSED and final.resolution is Resolution.DELIVERED
    assert world.shipment_status == [ShipmentStatus.DELIVERED]
    assert world.projections[-1].status is CaseStatus.CLOSED
    assert world.timeline[max(world.timeline)].summary == "Delivered; case closed"
    # The title follows the case: no longer "attempt 1 failed".
    assert final.subject == f"Shipment {final.business_key}: delivered after 1 failed attempt"
    assert world.projections[-1].subject == final.subject


async def test_missing_delivery_outcome_escalates_a_day_after_the_booked_window(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice())
    current = await wait_for_status(handle, CaseStatus.REDELIVERY_SCHEDULED)

    assert current.deadline_at is not None
    await time_env.sleep(current.deadline_at - await time_env.get_current_time() + 25 * HOUR)
    await wait_for_message(world, f"{handle.id}/a1/no-outcome")
    assert (await state(handle)).escalated is True
    assert (await state(handle)).status is CaseStatus.REDELIVERY_SCHEDULED


async def test_later_failed_attempt_is_delivered_to_the_open_case(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    second = FailedAttempt(
        attempt_number=2,
        reason=FailureReason.ACCESS_PROBLEM,
        driver_id="drv-2",
        attempted_at=datetime.now(UTC),
    )
    await handle.execute_update(
        FailedDeliveryWorkflow.report_failed_attempt, FailedAttemptReport(attempt=second)
    )
    await wait_for_message(world, f"{handle.id}/a2/customer-notice")

    current = await state(handle)
    assert current.details["attempt_number"] == 2
    assert current.details["last_reason"] == "access_problem"
    assert current.deadline_at is not None
    assert current.deadline_at > current.opened_at + timedelta(days=5) - HOUR


async def test_a_damaged_parcel_opens_the_damage_claim_for_the_shipment(
    time_env, task_queue, worker, world
):
    inp = case_input(unique("S"), reason=FailureReason.DAMAGED)
    handle = await open_case(time_env, task_queue, inp)
    current = await state(handle)

    claim_id = f"damage-claim-{inp.shipment_id}"
    assert current.details["damage_reported"] is True
    assert current.details["claim_case_id"] == claim_id
    assert "claim_opened" in [e.kind for e in world.events(current)]
    claim = time_env.client.get_workflow_handle(claim_id)
    for _ in range(200):
        claim_state = await claim.query(DamageClaimWorkflow.state)
        if claim_state.status is CaseStatus.GATHERING_EVIDENCE:
            break
        await asyncio.sleep(0.02)
    assert claim_state.details["linked_case_id"] == handle.id
    assert claim_state.details["claim_type"] == "damaged"
    assert claim_state.details["declared_value"] is None
    assert claim_state.deadline_at == inp.attempt.attempted_at + timedelta(hours=72)


async def test_the_claim_a_damaged_parcel_opens_runs_on_the_clients_claim_policy(
    time_env, task_queue, worker
):
    inp = case_input(unique("S"), reason=FailureReason.DAMAGED).model_copy(
        update={"claim_policy": ClaimPolicy(filing_window=timedelta(hours=48))}
    )
    await open_case(time_env, task_queue, inp)
    claim = time_env.client.get_workflow_handle(f"damage-claim-{inp.shipment_id}")
    for _ in range(200):
        claim_state = await claim.query(DamageClaimWorkflow.state)
        if claim_state.deadline_at is not None:
            break
        await asyncio.sleep(0.02)
    assert claim_state.deadline_at == inp.attempt.attempted_at + timedelta(hours=48)


async def test_a_damaged_parcel_links_to_a_claim_already_open(time_env, task_queue, worker, world):
    inp = case_input(unique("S"), reason=FailureReason.DAMAGED)
    claim_id = f"damage-claim-{inp.shipment_id}"
    await time_env.client.start_workflow(
        DamageClaimWorkflow.run,
        DamageClaimInput(
            shipment_id=inp.shipment_id,
            client_id=inp.client_id,
            depot_id=inp.depot_id,
            claim_type="damaged",
            reported_by="customer",
            delivery_event_at=inp.attempt.attempted_at,
        ),
        id=claim_id,
        task_queue=task_queue,
    )
    handle = await open_case(time_env, task_queue, inp)
    current = await state(handle)

    assert current.details["claim_case_id"] == claim_id
    assert "claim_linked" in [e.kind for e in world.events(current)]
    assert "claim_opened" not in [e.kind for e in world.events(current)]


# --- ops actions and their rules --------------------------------------------------------------


async def test_ops_cancel_closes_the_case_and_stops_the_timers(time_env, task_queue, worker, world):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))

    result = await handle.execute_update(
        FailedDeliveryWorkflow.cancel,
        CancelInput(reason="customer collected at depot", by="ops:kim"),
    )
    final = await handle.result()

    assert result.status is CaseStatus.CANCELLED
    assert final.resolution is Resolution.CANCELLED
    assert "failed_delivery/customer_reminder" not in world.templates
    assert world.shipment_status == []


async def test_note_assign_and_escalate_are_recorded_on_the_timeline(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    await handle.execute_update(
        FailedDeliveryWorkflow.add_note, NoteInput(text="Called customer", by="ops:kim")
    )
    await handle.execute_update(
        FailedDeliveryWorkflow.assign, AssignInput(assignee="kim", by="ops:kim")
    )
    result = await handle.execute_update(
        FailedDeliveryWorkflow.escalate, EscalateInput(reason="VIP client", by="ops:kim")
    )

    assert result.assignee == "kim" and result.escalated
    assert result.escalation_reason == "VIP client"
    assert result.timeline == []  # update results stay small; the query has the timeline
    timeline = world.events(await state(handle))
    assert {"note", "assigned", "escalated"} <= {e.kind for e in timeline}
    escalated_seq = next(e.seq for e in timeline if e.kind == "escalated")
    await wait_for_message(world, f"{handle.id}/escalation-{escalated_seq}")


async def test_concurrent_escalations_each_notify_the_dispatcher(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    await asyncio.gather(
        handle.execute_update(FailedDeliveryWorkflow.escalate, EscalateInput(reason="one")),
        handle.execute_update(FailedDeliveryWorkflow.escalate, EscalateInput(reason="two")),
    )
    for _ in range(200):
        if len([k for k in world.sent if "/escalation-" in k]) == 2:
            break
        await asyncio.sleep(0.02)
    escalations = sorted(
        m.context["escalation_reason"] for m in world.sent.values() if "/escalation-" in m.key
    )
    assert escalations == ["one", "two"]


async def test_a_second_choice_while_the_first_is_booked_is_rejected(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    world.hold_bookings = asyncio.Event()  # the first choice is being booked meanwhile
    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice())

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice())
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "ActionNotAllowed"
    assert "not allowed" in str(err.value.cause)
    world.hold_bookings.set()


async def test_a_link_for_an_earlier_attempt_is_rejected(time_env, task_queue, worker):
    handle = await open_case(time_env, task_queue, case_input(unique("S"), attempt=2))
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice(attempt=1))
    assert "current attempt is 2" in str(err.value.cause)


async def test_a_redelivery_date_outside_the_horizon_is_invalid(time_env, task_queue, worker):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    too_late = (datetime.now(UTC) + timedelta(days=30)).date()
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(
            FailedDeliveryWorkflow.choose_redelivery,
            choice(option="redelivery_window", date=too_late, window="evening"),
        )
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "InvalidRequest"
    assert (await state(handle)).status is CaseStatus.WAITING_ON_CUSTOMER


async def test_delivery_outcome_before_a_booking_is_rejected(time_env, task_queue, worker):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(
            FailedDeliveryWorkflow.record_delivery_outcome, outcome("delivered")
        )
    assert "'delivery-outcome' is not allowed while the case is waiting_on_customer" in str(
        err.value.cause
    )


async def test_cancel_after_closing_is_rejected_by_the_workflow_being_gone(
    time_env, task_queue, worker
):
    handle = await time_env.client.start_workflow(
        FailedDeliveryWorkflow.run,
        case_input(unique("S"), reason=FailureReason.REFUSED),
        id=unique("failed-delivery"),
        task_queue=task_queue,
    )
    await handle.result()
    with pytest.raises(RPCError) as err:  # the server refuses updates to closed workflows
        await handle.execute_update(FailedDeliveryWorkflow.cancel, CancelInput(reason="late"))
    assert err.value.status is RPCStatusCode.NOT_FOUND


# --- failures reach a person ------------------------------------------------------------------


async def test_customer_email_refused_by_the_provider_escalates_to_the_dispatcher(
    time_env, task_queue, worker, world
):
    world.message_failure = lambda request: (
        "EmailRejected" if request.to.role == "customer" else None
    )
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    current = await wait_until_escalated(handle)

    assert f"{handle.id}/a1/customer-notice" not in world.sent
    await wait_for_message(world, f"{handle.id}/a1/customer-notice/failed")
    assert world.sent[f"{handle.id}/a1/customer-notice/failed"].to.role == "dispatcher"
    assert "Could not send the missed-delivery email" in (current.escalation_reason or "")
    assert current.status is CaseStatus.WAITING_ON_CUSTOMER


async def test_refused_booking_escalates_and_waits_for_another_choice(
    time_env, task_queue, worker, world
):
    world.booking_failure = "pickup point pp-9 is not at depot depot-north"
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    await handle.execute_update(
        FailedDeliveryWorkflow.choose_redelivery,
        choice(option="pickup_point", pickup_point_id="pp-9"),
    )
    current = await wait_until_escalated(handle)
    assert "Could not book the redelivery" in (current.escalation_reason or "")
    assert current.status is CaseStatus.WAITING_ON_CUSTOMER
    assert "redelivery" in current.allowed_actions


async def wait_for_message(world: FakeWorld, key: str) -> None:
    for _ in range(200):
        if key in world.sent:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {key} was not sent; sent: {sorted(world.sent)}")


async def wait_until_escalated(handle: WorkflowHandle) -> CaseState:
    for _ in range(200):
        current = await state(handle)
        if current.escalated:
            return current
        await asyncio.sleep(0.02)
    raise AssertionError("the case was never escalated")


# --- races between the routing system, ops and the run loop ----------------------------------


async def book_and_fail_outcome(handle: WorkflowHandle, world: FakeWorld) -> None:
    """Book a redelivery for attempt 1, then report it failed while the fakes hold the
    recording of attempt 2 (the window in which a retried webhook would arrive)."""
    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice())
    await wait_for_status(handle, CaseStatus.REDELIVERY_SCHEDULED)
    world.hold_attempt_records = asyncio.Event()
    await handle.execute_update(
        FailedDeliveryWorkflow.record_delivery_outcome,
        outcome("failed", reason="not_home", attempt_number=1),
    )
    for _ in range(200):
        if (await state(handle)).details["attempt_number"] == 2:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("attempt 2 never started")


async def test_a_retried_failed_outcome_is_refused_while_the_next_attempt_is_recorded(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    await book_and_fail_outcome(handle, world)

    current = await state(handle)
    assert "delivery-outcome" not in current.allowed_actions
    assert "redelivery" not in current.allowed_actions
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(
            FailedDeliveryWorkflow.record_delivery_outcome,
            outcome("failed", reason="not_home", attempt_number=1),
        )
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "ActionNotAllowed"

    assert world.hold_attempt_records is not None
    world.hold_attempt_records.set()
    await wait_for_status(handle, CaseStatus.WAITING_ON_CUSTOMER)
    assert [a.attempt.attempt_number for a in world.attempts] == [1, 2]
    assert (await state(handle)).details["fees_cents"] == 2 * 1700


async def test_an_outcome_for_another_attempt_is_refused(time_env, task_queue, worker):
    handle = await open_case(time_env, task_queue, case_input(unique("S"), attempt=2))
    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice(attempt=2))
    await wait_for_status(handle, CaseStatus.REDELIVERY_SCHEDULED)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(
            FailedDeliveryWorkflow.record_delivery_outcome, outcome("delivered", attempt_number=1)
        )
    assert "this outcome is for attempt 1" in str(err.value.cause)
    await handle.execute_update(
        FailedDeliveryWorkflow.record_delivery_outcome, outcome("delivered", attempt_number=2)
    )
    assert (await handle.result()).resolution is Resolution.DELIVERED


async def test_cancel_while_an_attempt_is_recorded_sends_nothing_to_the_customer(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    await book_and_fail_outcome(handle, world)

    await handle.execute_update(FailedDeliveryWorkflow.cancel, CancelInput(reason="ops took over"))
    assert world.hold_attempt_records is not None
    world.hold_attempt_records.set()
    final = await handle.result()

    assert final.status is CaseStatus.CANCELLED
    assert f"{handle.id}/a2/customer-notice" not in world.sent


async def test_cancel_is_refused_once_the_case_is_closing(time_env, task_queue, worker, world):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice())
    await wait_for_status(handle, CaseStatus.REDELIVERY_SCHEDULED)
    world.hold_shipment_updates = asyncio.Event()
    await handle.execute_update(
        FailedDeliveryWorkflow.record_delivery_outcome, outcome("delivered")
    )

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(FailedDeliveryWorkflow.cancel, CancelInput(reason="too late"))
    assert "and closing" in str(err.value.cause)
    world.hold_shipment_updates.set()
    assert (await handle.result()).resolution is Resolution.DELIVERED


async def test_a_later_attempt_is_accepted_while_a_choice_is_being_booked(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    world.hold_bookings = asyncio.Event()
    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice())
    second = FailedAttempt(
        attempt_number=2,
        reason=FailureReason.NOT_HOME,
        driver_id="drv-2",
        attempted_at=datetime.now(UTC),
    )
    await handle.execute_update(
        FailedDeliveryWorkflow.report_failed_attempt, FailedAttemptReport(attempt=second)
    )
    world.hold_bookings.set()
    await wait_for_message(world, f"{handle.id}/a2/customer-notice")
    assert (await state(handle)).details["attempt_number"] == 2


async def test_a_refused_booking_tells_the_dispatcher_and_does_not_repeat_the_ladder(
    time_env, task_queue, worker, world
):
    world.booking_failure = "pickup point pp-9 is not at depot depot-north"
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    await time_env.sleep(50 * HOUR)  # past the reminder (24 h) and the escalation (48 h)
    await wait_for_message(world, f"{handle.id}/a1/dispatcher-escalation")
    await handle.execute_update(
        FailedDeliveryWorkflow.choose_redelivery,
        choice(option="pickup_point", pickup_point_id="pp-9"),
    )
    for _ in range(200):
        if any("/booking-failed-" in key for key in world.sent):
            break
        await asyncio.sleep(0.02)
    await time_env.sleep(2 * HOUR)

    keys = list(world.sent)
    assert sum("/booking-failed-" in key for key in keys) == 1
    timeline = world.events(await state(handle))
    assert [e.kind for e in timeline].count("escalated") == 2  # 48 h, then the booking
    assert not any("already sent" in e.summary for e in timeline)


# --- changing the booked redelivery -----------------------------------------------------------


async def _booked_in(time_env, handle, days: int) -> CaseState:
    day = (await time_env.get_current_time()).date() + timedelta(days=days)
    window = choice(option="redelivery_window", date=day, window="morning")
    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, window)
    return await wait_for_status(handle, CaseStatus.REDELIVERY_SCHEDULED)


async def test_the_booking_can_be_changed_until_the_cut_off(time_env, task_queue, worker, world):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    booked = await _booked_in(time_env, handle, 3)
    first_day = booked.details["redelivery"]

    until = datetime.fromisoformat(booked.details["changeable_until"])
    route_day = datetime.combine(
        (await time_env.get_current_time()).date() + timedelta(days=3), datetime.min.time(), UTC
    )
    assert until == route_day - timedelta(hours=6)  # 18:00 the evening before (depot: UTC)
    assert "redelivery" in booked.allowed_actions and "delivery-outcome" in booked.allowed_actions
    # The confirmation goes out after the booking is recorded: wait for it, do not race it.
    await wait_for_message(world, f"{handle.id}/a1/redelivery-confirmation")
    confirmation = world.sent[f"{handle.id}/a1/redelivery-confirmation"]
    assert confirmation.link is not None and confirmation.context["change_until"]

    later = (await time_env.get_current_time()).date() + timedelta(days=4)
    new = choice(option="redelivery_window", date=later, window="evening", by="customer")
    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, new)
    await wait_for_message(world, f"{handle.id}/a1/client-notice-1")

    current = await state(handle)
    assert current.status is CaseStatus.REDELIVERY_SCHEDULED
    assert (
        current.details["redelivery"] != first_day
        and later.isoformat() in (current.details["redelivery"])
    )
    assert [b.choice.date for b in world.bookings][-2:] == [later - timedelta(days=1), later]
    changed = world.sent[f"{handle.id}/a1/redelivery-confirmation-1"]
    assert changed.context["changed"] is True and changed.link is not None
    summaries = [e.summary for e in world.events(current)]
    assert "Customer changed the booking to: " in "".join(summaries)
    assert any(s.startswith("Redelivery changed: ") for s in summaries)
    # The outcome still closes it, for the new booking.
    await handle.execute_update(
        FailedDeliveryWorkflow.record_delivery_outcome, outcome("delivered")
    )
    assert (await handle.result()).resolution is Resolution.DELIVERED


async def test_the_booking_is_fixed_at_the_cut_off(time_env, task_queue, worker, world):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    booked = await _booked_in(time_env, handle, 2)
    until = datetime.fromisoformat(booked.details["changeable_until"])

    await time_env.sleep(until - await time_env.get_current_time() + timedelta(minutes=1))
    for _ in range(200):
        current = await state(handle)
        if "redelivery" not in current.allowed_actions:
            break
        await asyncio.sleep(0.02)

    assert (
        current.allowed_actions == [a for a in current.allowed_actions if a != "redelivery"]
        and "delivery-outcome" in current.allowed_actions
    )
    assert any("can no longer be changed" in e.summary for e in world.events(current))
    late = choice(option="neighbour")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, late)
    assert "not allowed" in str(refused.value.cause)
    assert len(world.bookings) == 1


async def test_a_change_that_cannot_be_booked_keeps_the_booking(
    time_env, task_queue, worker, world
):
    handle = await open_case(time_env, task_queue, case_input(unique("S")))
    booked = await _booked_in(time_env, handle, 3)
    world.booking_failure = "pickup point closed"

    await handle.execute_update(
        FailedDeliveryWorkflow.choose_redelivery, choice(option="neighbour")
    )
    current = await wait_until_escalated(handle)

    assert current.status is CaseStatus.REDELIVERY_SCHEDULED
    assert current.details["redelivery"] == booked.details["redelivery"]
    assert current.details["redelivery_option"] == "redelivery_window"
    assert "redelivery" in current.allowed_actions  # another change may still be tried
    assert "Could not book the redelivery" in (current.escalation_reason or "")
