"""The damage / loss claim in simulated time: the filing deadline and every path around it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.temporal import DEADLINE_AT, ESCALATED
from schemas.cases import CancelInput, CaseSnapshot, CaseState, Customer
from schemas.claims import (
    AddDocumentInput,
    DamageClaimInput,
    DecisionInput,
    FileClaimInput,
)
from schemas.documents import ClaimType, DocumentKind
from schemas.enums import CaseStatus, Resolution
from schemas.policies import ClaimPolicy
from tests.workflows.claim_fakes import ClaimWorld, document
from workflows.damage_claim import DamageClaimWorkflow

HOUR = timedelta(hours=1)
PEOPLE_ITEMS = (
    DocumentKind.DAMAGE_PHOTOS,
    DocumentKind.CUSTOMER_ATTESTATION,
    DocumentKind.PROOF_OF_VALUE,
)


@pytest.fixture
def world() -> ClaimWorld:
    return ClaimWorld()


@pytest.fixture
async def worker(
    time_env: WorkflowEnvironment, task_queue: str, world: ClaimWorld
) -> AsyncIterator[Worker]:
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[DamageClaimWorkflow],
        activities=world.activities(),
    ) as running:
        yield running


async def open_claim(
    env: WorkflowEnvironment,
    task_queue: str,
    *,
    event_age: timedelta = HOUR,
    claim_type: ClaimType = ClaimType.DAMAGED,
    policy: ClaimPolicy | None = None,
) -> WorkflowHandle[DamageClaimWorkflow, CaseSnapshot]:
    shipment = f"S-{uuid.uuid4().hex[:8]}"
    now = await env.get_current_time()
    handle = await env.client.start_workflow(
        DamageClaimWorkflow.run,
        DamageClaimInput(
            shipment_id=shipment,
            client_id="demo-shop",
            depot_id="depot-north",
            claim_type=claim_type,
            reported_by="customer",
            delivery_event_at=now - event_age,
            declared_value=Decimal("129.90"),
            currency="GBP",
            description="Box crushed, vase broken",
            customer=Customer(name="Ada Customer", email="ada@example.com"),
            driver_id="driver-001",
            policy=policy or ClaimPolicy(),
        ),
        id=f"damage-claim-{shipment}",
        task_queue=task_queue,
    )
    await until(handle, lambda s: s.status is CaseStatus.GATHERING_EVIDENCE and s.version > 2)
    return handle


async def state(handle: WorkflowHandle) -> CaseState:
    return await handle.query(DamageClaimWorkflow.state)


async def until(handle: WorkflowHandle, check) -> CaseState:  # type: ignore[no-untyped-def]
    for _ in range(250):
        current = await state(handle)
        if check(current):
            return current
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition never held; last state {current.status} {current.details}")


async def supply(handle: WorkflowHandle, *kinds: DocumentKind) -> None:
    for kind in kinds:
        await handle.execute_update(
            DamageClaimWorkflow.add_document,
            AddDocumentInput(document=document(kind, "image/jpeg"), by="ops:kim"),
        )


async def sent(world: ClaimWorld, fragment: str) -> list[str]:
    for _ in range(100):
        keys = [key for key in world.sent if fragment in key]
        if keys:
            return keys
        await asyncio.sleep(0.02)
    return []


# --- opening and the deadline ---------------------------------------------------------------


async def test_opening_sets_the_72_hour_deadline_and_asks_driver_and_customer(
    time_env, task_queue, worker, world
):
    handle = await open_claim(time_env, task_queue, event_age=2 * HOUR)
    current = await state(handle)
    event_at = current.details["delivery_event_at"]

    assert current.deadline_at is not None
    assert (
        current.deadline_at.isoformat()
        == (
            (await time_env.get_current_time()).__class__.fromisoformat(event_at) + 72 * HOUR
        ).isoformat()
    )
    assert (await handle.describe()).typed_search_attributes.get(DEADLINE_AT) == current.deadline_at
    assert current.details["late"] is False and current.escalated is False
    # The system's own items are gathered by the activity; people are asked for theirs.
    assert world.gathered[0].kinds == [DocumentKind.ATTEMPT_RECORD, DocumentKind.PROOF_OF_DELIVERY]
    checklist = current.details["checklist"]
    assert checklist["attempt_record"] == "present" and checklist["damage_photos"] == "missing"
    driver = world.sent[f"{handle.id}/r1/request/driver"]
    assert driver.template == "claims/evidence_request_driver"
    assert driver.link is not None and driver.link.purpose == "claim-upload"
    assert driver.link.data["kinds"] == ["damage_photos"]
    customer = world.sent[f"{handle.id}/r1/request/customer"]
    assert customer.link is not None
    assert customer.link.data["kinds"] == ["customer_attestation", "proof_of_value"]


async def test_a_claim_reported_after_the_deadline_is_opened_late_and_escalated(
    time_env, task_queue, worker, world
):
    handle = await open_claim(time_env, task_queue, event_age=80 * HOUR)
    current = await until(handle, lambda s: s.escalated)

    assert current.details["late"] is True
    assert "after the filing deadline" in (current.escalation_reason or "")
    assert current.status is CaseStatus.GATHERING_EVIDENCE
    assert await sent(world, "/late-")
    assert (await handle.describe()).typed_search_attributes.get(ESCALATED) is True


# --- reminders and escalation ----------------------------------------------------------------


async def test_reminders_go_at_24_and_48_hours_after_the_event_to_whoever_owes(
    time_env, task_queue, worker, world
):
    handle = await open_claim(time_env, task_queue, event_age=HOUR)
    await supply(handle, DocumentKind.DAMAGE_PHOTOS)  # the driver has delivered

    await time_env.sleep(22 * HOUR)
    assert not [k for k in world.sent if "reminder" in k]
    await time_env.sleep(2 * HOUR)
    first = await sent(world, "/r1/reminder-1/")
    assert first == [f"{handle.id}/r1/reminder-1/customer"]
    await time_env.sleep(24 * HOUR)
    assert await sent(world, "/r1/reminder-2/customer")
    assert not [k for k in world.sent if "reminder" in k and k.endswith("/driver")]
    assert world.sent[f"{handle.id}/r1/reminder-2/customer"].template == "claims/evidence_reminder"


async def test_missing_items_escalate_to_the_claims_desk_12_hours_before_the_deadline(
    time_env, task_queue, worker, world
):
    handle = await open_claim(time_env, task_queue, event_age=HOUR)
    await time_env.sleep(58 * HOUR)
    assert world.sent_to("claims_desk") == []
    await time_env.sleep(2 * HOUR)

    keys = await sent(world, "/r1/claims-desk-")
    assert keys and world.sent[keys[0]].template == "claims/claims_desk_escalation"
    current = await state(handle)
    assert current.escalated and "12 h before the filing deadline" in (
        current.escalation_reason or ""
    )


async def test_a_complete_checklist_does_not_escalate(time_env, task_queue, worker, world):
    handle = await open_claim(time_env, task_queue, event_age=HOUR)
    await supply(handle, *PEOPLE_ITEMS)
    await until(handle, lambda s: s.status is CaseStatus.AWAITING_DECISION)
    await time_env.sleep(70 * HOUR)
    assert world.sent_to("claims_desk") == []
    assert (await state(handle)).escalated is False


# --- filing ------------------------------------------------------------------------------------


async def test_complete_evidence_files_the_package_with_the_claims_contact_on_time(
    time_env, task_queue, worker, world
):
    handle = await open_claim(time_env, task_queue, event_age=HOUR)
    await supply(handle, *PEOPLE_ITEMS)
    current = await until(handle, lambda s: s.status is CaseStatus.AWAITING_DECISION)

    package = world.packages[0]
    assert package.summary.late is False and package.summary.missing_reasons == {}
    assert {d.kind for d in package.documents} == {
        DocumentKind.ATTEMPT_RECORD,
        DocumentKind.PROOF_OF_DELIVERY,
        *PEOPLE_ITEMS,
    }
    filed = world.sent[f"{handle.id}/r1/filed"]
    assert filed.to.role == "client_contact" and filed.to.contact_kind == "claims"
    assert [a.content_type for a in filed.attachments] == ["application/zip"]
    assert current.details["package_id"] == filed.attachments[0].id
    assert current.deadline_at is None


async def test_ops_can_file_early_only_with_a_reason_for_each_missing_item(
    time_env, task_queue, worker, world
):
    handle = await open_claim(time_env, task_queue, event_age=HOUR)
    await supply(handle, DocumentKind.DAMAGE_PHOTOS)

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(
            DamageClaimWorkflow.file_claim,
            FileClaimInput(missing_reasons={DocumentKind.PROOF_OF_VALUE: "no receipt"}),
        )
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "InvalidRequest"
    assert "customer_attestation" in str(err.value.cause)

    reasons = {
        DocumentKind.PROOF_OF_VALUE: "customer has no receipt",
        DocumentKind.CUSTOMER_ATTESTATION: "customer unreachable by phone",
    }
    await handle.execute_update(
        DamageClaimWorkflow.file_claim, FileClaimInput(missing_reasons=reasons, by="ops:kim")
    )
    await until(handle, lambda s: s.status is CaseStatus.AWAITING_DECISION)
    assert world.packages[0].summary.missing_reasons == reasons


async def test_the_deadline_passing_with_items_missing_escalates_and_waits_for_ops(
    time_env, task_queue, worker, world
):
    handle = await open_claim(time_env, task_queue, event_age=HOUR)
    await time_env.sleep(75 * HOUR)
    current = await until(handle, lambda s: "deadline passed" in (s.escalation_reason or ""))

    assert current.status is CaseStatus.GATHERING_EVIDENCE
    assert (
        current.deadline_at is not None and current.deadline_at < await time_env.get_current_time()
    )
    assert await sent(world, "/r1/deadline-")
    assert "file" in current.allowed_actions
    await supply(handle, *PEOPLE_ITEMS)
    await until(handle, lambda s: s.status is CaseStatus.AWAITING_DECISION)


# --- the decision ------------------------------------------------------------------------------


async def filed_claim(env, task_queue, world) -> WorkflowHandle:  # type: ignore[no-untyped-def]
    handle = await open_claim(env, task_queue, event_age=HOUR)
    await supply(handle, *PEOPLE_ITEMS)
    await until(handle, lambda s: s.status is CaseStatus.AWAITING_DECISION)
    return handle


async def test_the_claims_contact_is_followed_up_every_7_days(time_env, task_queue, worker, world):
    handle = await filed_claim(time_env, task_queue, world)
    await time_env.sleep(6 * 24 * HOUR)
    assert not await sent(world, "/follow-up-")
    await time_env.sleep(2 * 24 * HOUR)
    assert await sent(world, "/r1/follow-up-1")
    await time_env.sleep(7 * 24 * HOUR)
    assert await sent(world, "/r1/follow-up-2")
    assert (await state(handle)).status is CaseStatus.AWAITING_DECISION


async def test_approval_closes_the_claim_as_paid(time_env, task_queue, worker, world):
    handle = await filed_claim(time_env, task_queue, world)
    await handle.execute_update(
        DamageClaimWorkflow.record_decision,
        DecisionInput(decision="approved", amount=Decimal("129.90"), by="ops:kim"),
    )
    final = await handle.result()
    assert final.status is CaseStatus.CLOSED and final.resolution is Resolution.PAID


async def test_denial_closes_the_claim_as_denied(time_env, task_queue, worker, world):
    handle = await filed_claim(time_env, task_queue, world)
    await handle.execute_update(
        DamageClaimWorkflow.record_decision,
        DecisionInput(decision="denied", reason="packaging inadequate"),
    )
    assert (await handle.result()).resolution is Resolution.DENIED


async def test_more_information_goes_back_to_gathering_and_files_again(
    time_env, task_queue, worker, world
):
    handle = await filed_claim(time_env, task_queue, world)
    await handle.execute_update(
        DamageClaimWorkflow.record_decision,
        DecisionInput(decision="more_information", requested=[DocumentKind.POLICE_REPORT]),
    )
    current = await until(
        handle, lambda s: s.status is CaseStatus.GATHERING_EVIDENCE and s.details["round"] == 2
    )
    assert current.details["checklist"]["police_report"] == "missing"
    assert current.deadline_at is not None
    assert await sent(world, "/r2/request/customer")

    await supply(handle, DocumentKind.POLICE_REPORT)
    await until(handle, lambda s: s.status is CaseStatus.AWAITING_DECISION)
    assert len(world.packages) == 2
    assert f"{handle.id}/r2/filed" in world.sent


async def test_withdrawing_closes_the_claim_as_withdrawn(time_env, task_queue, worker, world):
    handle = await open_claim(time_env, task_queue, event_age=HOUR)
    await handle.execute_update(
        DamageClaimWorkflow.cancel, CancelInput(reason="customer found the parcel", by="ops:kim")
    )
    final = await handle.result()
    assert final.status is CaseStatus.CLOSED and final.resolution is Resolution.WITHDRAWN
    assert not world.packages


async def test_a_decision_before_filing_is_refused(time_env, task_queue, worker):
    handle = await open_claim(time_env, task_queue, event_age=HOUR)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(
            DamageClaimWorkflow.record_decision,
            DecisionInput(decision="denied", reason="x"),
        )
    assert "'decision' is not allowed while the case is gathering_evidence" in str(err.value.cause)


# --- failures reach a person, the case never dies ---------------------------------------------


async def test_evidence_the_system_cannot_gather_is_escalated_and_left_to_people(
    time_env, task_queue, worker, world
):
    world.gather_failure = "shipment S-x not found"
    handle = await open_claim(time_env, task_queue, event_age=HOUR)
    current = await until(handle, lambda s: s.escalated)

    assert "Could not gather the system's evidence" in (current.escalation_reason or "")
    assert current.status is CaseStatus.GATHERING_EVIDENCE
    assert current.details["checklist"]["attempt_record"] == "missing"
    assert await sent(world, "/r1/gather-failed-")
    await supply(handle, DocumentKind.ATTEMPT_RECORD, DocumentKind.PROOF_OF_DELIVERY, *PEOPLE_ITEMS)
    await until(handle, lambda s: s.status is CaseStatus.AWAITING_DECISION)


async def test_a_package_that_cannot_be_built_is_escalated_and_waits_for_a_person(
    time_env, task_queue, worker, world
):
    world.package_failures = 1
    handle = await open_claim(time_env, task_queue, event_age=HOUR)
    await supply(handle, *PEOPLE_ITEMS)
    current = await until(
        handle, lambda s: "compile the claim package" in (s.escalation_reason or "")
    )

    assert current.status is CaseStatus.GATHERING_EVIDENCE
    await asyncio.sleep(0.3)
    assert len(world.packages) == 1  # no retry loop: it waits for a person
    await handle.execute_update(DamageClaimWorkflow.file_claim, FileClaimInput(by="ops:kim"))
    await until(handle, lambda s: s.status is CaseStatus.AWAITING_DECISION)
    assert len(world.packages) == 2
