"""The driver-onboarding case in simulated time: the welcome with the briefing pack, uploads
and reviews, the 48 h reminders, the coordinator's 7-day escalation and 24 h review
reminder, abandonment at 30 days, withdrawal, and activation with the compliance watch."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.cases import CancelInput, CaseSnapshot
from schemas.claims import AddDocumentInput
from schemas.documents import EXPIRING_KINDS, DocumentKind
from schemas.enums import CaseStatus, DriverStatus, Resolution, VehicleType
from schemas.onboarding import (
    ChecklistChange,
    DriverOnboardingInput,
    DriverProfile,
    OnboardingPolicy,
    ReviewDocumentInput,
)
from tests.workflows.driver_fakes import DriverWorld, upload
from tests.workflows.polling import state, until
from workflows.driver_compliance import DriverComplianceWorkflow
from workflows.driver_onboarding import DriverOnboardingWorkflow

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SIX = [
    DocumentKind.DRIVING_LICENCE,
    DocumentKind.PROOF_OF_INSURANCE,
    DocumentKind.VEHICLE_REGISTRATION,
    DocumentKind.BACKGROUND_CHECK_CONSENT,
    DocumentKind.CONTRACTOR_AGREEMENT,
    DocumentKind.TAX_FORM,
]


@pytest.fixture
def world() -> DriverWorld:
    return DriverWorld()


@pytest.fixture
async def worker(
    time_env: WorkflowEnvironment, task_queue: str, world: DriverWorld
) -> AsyncIterator[Worker]:
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[DriverOnboardingWorkflow, DriverComplianceWorkflow],
        activities=world.activities(),
    ) as running:
        yield running


def onboarding(
    vehicle: VehicleType = VehicleType.VAN, policy: OnboardingPolicy | None = None
) -> DriverOnboardingInput:
    policy = policy or OnboardingPolicy()
    return DriverOnboardingInput(
        driver_id=f"drv-{uuid.uuid4().hex[:8]}",
        depot_id="depot-north",
        driver=DriverProfile(name="Dee Driver", email="dee@example.com"),
        vehicle_type=vehicle,
        planned_start_date=date.today() + timedelta(days=14),
        checklist=policy.checklist_for(vehicle),
        policy=policy,
        opened_by="ops:test",
    )


async def start(
    env: WorkflowEnvironment, task_queue: str, inp: DriverOnboardingInput
) -> WorkflowHandle[DriverOnboardingWorkflow, CaseSnapshot]:
    """Open the case and wait until the welcome is out and the ladder is running."""
    handle = await env.client.start_workflow(
        DriverOnboardingWorkflow.run,
        inp,
        id=f"driver-onboarding-{inp.driver_id}",
        task_queue=task_queue,
    )
    await until(handle, lambda s: s.next_step_at is not None and s.version >= 3)
    return handle


async def send(handle: WorkflowHandle, kind: DocumentKind) -> str:
    document = upload(kind)
    await handle.execute_update(
        DriverOnboardingWorkflow.add_document, AddDocumentInput(document=document, by="link")
    )
    return document.id


async def approve(handle: WorkflowHandle, document_id: str, kind: DocumentKind) -> None:
    expires = date.today() + timedelta(days=365) if kind in EXPIRING_KINDS else None
    await handle.execute_update(
        DriverOnboardingWorkflow.review_document,
        ReviewDocumentInput(document_id=document_id, decision="approved", expires_on=expires),
    )


def keys(world: DriverWorld, handle: WorkflowHandle) -> list[str]:
    return [key.removeprefix(f"{handle.id}/") for key in world.send_log]


# --- opening --------------------------------------------------------------------------------


async def test_the_welcome_carries_the_briefing_pack_and_a_link_for_every_item(
    time_env, task_queue, worker, world
):
    inp = onboarding()
    handle = await start(time_env, task_queue, inp)
    current = await state(handle)

    welcome = world.sent[f"{handle.id}/welcome"]
    assert welcome.template == "onboarding/welcome"
    assert welcome.to.role == "driver" and welcome.to.driver_id == inp.driver_id
    assert [a.kind for a in welcome.attachments] == [DocumentKind.BRIEFING_PACK]
    assert welcome.link is not None and welcome.link.purpose == "driver-upload"
    assert welcome.link.data["kinds"] == [kind.value for kind in SIX]
    assert welcome.context["items"] == [kind.value for kind in SIX]
    assert world.briefings[0].depot_id == "depot-north"
    assert current.status is CaseStatus.COLLECTING_DOCUMENTS
    assert current.deadline_at == current.opened_at + timedelta(days=30)
    assert current.next_step == "remind the driver (1)"
    assert current.depot_id == "depot-north" and current.client_id is None
    assert inp.driver.name not in current.subject  # no personal data in the index subject


async def test_a_cargo_bike_needs_no_registration_and_a_depot_can_add_an_item(
    time_env, task_queue, worker, world
):
    policy = OnboardingPolicy(depot_changes=ChecklistChange(add=(DocumentKind.RIGHT_TO_WORK,)))
    inp = onboarding(VehicleType.CARGO_BIKE, policy)
    handle = await start(time_env, task_queue, inp)

    checklist = [item["kind"] for item in (await state(handle)).details["checklist"]]
    assert DocumentKind.VEHICLE_REGISTRATION.value not in checklist
    assert checklist[-1] == DocumentKind.RIGHT_TO_WORK.value and len(checklist) == 6


# --- to activation ---------------------------------------------------------------------------


async def test_every_item_approved_activates_the_driver_and_starts_the_watch(
    time_env, task_queue, worker, world
):
    inp = onboarding()
    handle = await start(time_env, task_queue, inp)
    for kind in SIX:
        await approve(handle, await send(handle, kind), kind)
    final = await handle.result()

    assert final.resolution is Resolution.ACTIVATED
    assert world.driver_status[inp.driver_id] == [DriverStatus.ACTIVE]
    sent = keys(world, handle)
    assert "first-day" in sent and "dispatcher-ready" in sent
    assert world.sent[f"{handle.id}/dispatcher-ready"].to.role == "dispatcher"
    watch = time_env.client.get_workflow_handle(f"driver-compliance-{inp.driver_id}")
    watch_state = await watch.query(DriverComplianceWorkflow.state)
    assert [d["kind"] for d in watch_state.details["documents"]] == [
        kind.value for kind in SIX if kind in EXPIRING_KINDS
    ]
    assert final.details["compliance_case_id"] == watch.id
    statuses = [r.status.value for r in world.driver_documents]
    assert statuses.count("in_review") == 6 and statuses.count("approved") == 6


async def test_a_rejected_document_is_asked_for_again_with_the_reason(
    time_env, task_queue, worker, world
):
    handle = await start(time_env, task_queue, onboarding())
    first = await send(handle, DocumentKind.DRIVING_LICENCE)
    await handle.execute_update(
        DriverOnboardingWorkflow.review_document,
        ReviewDocumentInput(document_id=first, decision="rejected", reason="photo is blurred"),
    )
    current = await until(handle, lambda s: f"{handle.id}/rejected-{first}" in world.sent)

    rejection = world.sent[f"{handle.id}/rejected-{first}"]
    assert rejection.template == "onboarding/document_rejected"
    assert rejection.context["rejected_reason"] == "photo is blurred"
    assert rejection.link is not None
    assert DocumentKind.DRIVING_LICENCE.value in rejection.link.data["kinds"]
    licence = current.details["checklist"][0]
    assert licence["status"] == "requested" and licence["rejected_reason"] == "photo is blurred"

    second = await send(handle, DocumentKind.DRIVING_LICENCE)
    await approve(handle, second, DocumentKind.DRIVING_LICENCE)
    current = await state(handle)
    assert current.details["checklist"][0]["status"] == "approved"
    # Both uploads stay listed (the rejected one too, for the record).
    assert [d["id"] for d in current.details["documents"]] == [first, second]


async def test_review_refuses_missing_or_short_expiry_and_unknown_documents(
    time_env, task_queue, worker, world
):
    handle = await start(time_env, task_queue, onboarding())
    licence = await send(handle, DocumentKind.DRIVING_LICENCE)

    async def refused(review: ReviewDocumentInput) -> ApplicationError:
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(DriverOnboardingWorkflow.review_document, review)
        assert isinstance(failed.value.cause, ApplicationError)
        return failed.value.cause

    no_date = await refused(ReviewDocumentInput(document_id=licence, decision="approved"))
    soon = await refused(
        ReviewDocumentInput(
            document_id=licence,
            decision="approved",
            expires_on=(await time_env.get_current_time()).date() + timedelta(days=10),
        )
    )
    unknown = await refused(ReviewDocumentInput(document_id=str(uuid.uuid4()), decision="approved"))

    assert (no_date.type, no_date.details[0]["field"]) == ("InvalidRequest", "expires_on")
    assert (soon.type, soon.details[0]["field"]) == ("InvalidRequest", "expires_on")
    assert unknown.type == "ActionNotAllowed"
    assert (await state(handle)).details["checklist"][0]["status"] == "in_review"
    with pytest.raises(WorkflowUpdateFailedError):  # an item not on the checklist
        await send(handle, DocumentKind.POLICE_REPORT)


# --- the ladder ------------------------------------------------------------------------------


async def test_the_driver_is_reminded_every_48_hours_of_what_is_still_requested(
    time_env, task_queue, worker, world
):
    handle = await start(time_env, task_queue, onboarding())
    await time_env.sleep(5 * DAY)
    await until(handle, lambda s: s.next_step == "remind the driver (3)")

    assert [k for k in keys(world, handle) if k.startswith("reminder")] == [
        "reminder-1",
        "reminder-2",
    ]
    reminder = world.sent[f"{handle.id}/reminder-2"]
    assert reminder.template == "onboarding/reminder" and reminder.link is not None


async def test_after_7_days_the_coordinator_is_told_once_and_the_case_is_escalated(
    time_env, task_queue, worker, world
):
    handle = await start(time_env, task_queue, onboarding())
    await send(handle, DocumentKind.TAX_FORM)
    await time_env.sleep(7 * DAY + HOUR)
    current = await until(handle, lambda s: s.escalated)

    assert keys(world, handle).count("coordinator-escalation") == 1
    escalation = world.sent[f"{handle.id}/coordinator-escalation"]
    assert escalation.to.role == "onboarding_coordinator"
    reason = current.escalation_reason or ""
    assert "driving_licence" in reason and "in review: tax_form" in reason


async def test_a_document_in_review_for_24_hours_reminds_the_coordinator(
    time_env, task_queue, worker, world
):
    handle = await start(time_env, task_queue, onboarding())
    document = await send(handle, DocumentKind.TAX_FORM)
    await time_env.sleep(25 * HOUR)
    await until(handle, lambda s: f"{handle.id}/review-reminder-{document}" in world.sent)

    reminder = world.sent[f"{handle.id}/review-reminder-{document}"]
    assert reminder.to.role == "onboarding_coordinator"
    assert reminder.context["in_review"] == ["tax_form"]
    assert keys(world, handle).count(f"review-reminder-{document}") == 1


async def test_after_30_days_the_case_is_abandoned_and_the_coordinator_told(
    time_env, task_queue, worker, world
):
    inp = onboarding()
    handle = await start(time_env, task_queue, inp)
    final = await handle.result()  # time skips through the whole ladder

    assert final.resolution is Resolution.ABANDONED
    assert world.driver_status[inp.driver_id] == [DriverStatus.ABANDONED]
    sent = keys(world, handle)
    assert sent.count("coordinator-escalation") == 1 and sent[-1] == "abandoned"
    assert len([k for k in sent if k.startswith("reminder")]) == 14  # 48 h apart, < 30 days
    assert "documents" not in final.model_dump().get("allowed_actions", [])


async def test_ops_withdraw_the_onboarding(time_env, task_queue, worker, world):
    inp = onboarding()
    handle = await start(time_env, task_queue, inp)
    await handle.execute_update(
        DriverOnboardingWorkflow.cancel, CancelInput(reason="found another job", by="ops:kim")
    )
    final = await handle.result()

    assert final.resolution is Resolution.WITHDRAWN
    assert world.driver_status[inp.driver_id] == [DriverStatus.WITHDRAWN]
