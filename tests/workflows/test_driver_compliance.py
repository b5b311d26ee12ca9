"""The compliance watch in simulated time: a renewal asked for 30 days ahead, weekly
reminders, the coordinator warned 7 days before, suspension on expiry and reinstatement by an
approved replacement, across continue-as-new; offboarding ends it."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.cases import CaseSnapshot
from schemas.claims import AddDocumentInput
from schemas.documents import DocumentKind
from schemas.enums import CaseStatus, DriverStatus, Resolution
from schemas.onboarding import (
    CompliancePolicy,
    DriverComplianceInput,
    DriverProfile,
    OffboardInput,
    ReviewDocumentInput,
    WatchedDocument,
)
from tests.workflows.driver_fakes import DriverWorld, upload
from tests.workflows.polling import projected, state
from tests.workflows.test_continue_as_new import continued
from workflows.driver_compliance import DriverComplianceWorkflow

DAY = timedelta(days=1)
LICENCE = DocumentKind.DRIVING_LICENCE


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
        workflows=[DriverComplianceWorkflow],
        activities=world.activities(),
    ) as running:
        yield running


async def watch(
    env: WorkflowEnvironment, task_queue: str, *, licence_days: int, budget: int = 2_000
) -> tuple[WorkflowHandle[DriverComplianceWorkflow, CaseSnapshot], date]:
    """A watch over a licence expiring in `licence_days` and insurance in a year."""
    today = (await env.get_current_time()).date()
    driver_id = f"drv-{uuid.uuid4().hex[:8]}"
    expires = today + timedelta(days=licence_days)
    handle = await env.client.start_workflow(
        DriverComplianceWorkflow.run,
        DriverComplianceInput(
            driver_id=driver_id,
            depot_id="depot-north",
            driver=DriverProfile(name="Dee Driver", email="dee@example.com"),
            documents=[
                WatchedDocument(kind=LICENCE, document_id=str(uuid.uuid4()), expires_on=expires),
                WatchedDocument(
                    kind=DocumentKind.PROOF_OF_INSURANCE,
                    document_id=str(uuid.uuid4()),
                    expires_on=today + timedelta(days=365),
                ),
            ],
            policy=CompliancePolicy(history_event_budget=budget),
        ),
        id=f"driver-compliance-{driver_id}",
        task_queue=task_queue,
    )
    return handle, expires


async def renew(handle: WorkflowHandle, expires_on: date) -> None:
    replacement = upload(LICENCE)
    await handle.execute_update(
        DriverComplianceWorkflow.add_document,
        AddDocumentInput(document=replacement, by="link"),
    )
    await handle.execute_update(
        DriverComplianceWorkflow.review_document,
        ReviewDocumentInput(
            document_id=replacement.id, decision="approved", expires_on=expires_on, by="ops:kim"
        ),
    )


def sent(world: DriverWorld, handle: WorkflowHandle) -> list[str]:
    return [key.removeprefix(f"{handle.id}/") for key in world.send_log]


async def test_an_expired_licence_suspends_and_a_replacement_reinstates_across_runs(
    time_env, task_queue, worker, world
):
    handle, expires = await watch(time_env, task_queue, licence_days=40, budget=40)
    driver_id = handle.id.removeprefix("driver-compliance-")
    key = f"driving_licence-{expires.isoformat()}"

    await projected(world, handle.id, lambda s: s.status is CaseStatus.MONITORING)
    await time_env.sleep(12 * DAY)  # 30 days before the expiry has passed
    await projected(world, handle.id, lambda s: s.status is CaseStatus.RENEWAL_REQUESTED)
    request = world.sent[f"{handle.id}/{key}/renewal-request"]
    assert request.to.role == "driver" and request.link is not None
    assert request.link.data["kinds"] == ["driving_licence"]

    await time_env.sleep(31 * DAY)  # past the expiry
    current = await projected(world, handle.id, lambda s: s.status is CaseStatus.SUSPENDED)
    assert world.driver_status[driver_id] == [DriverStatus.SUSPENDED]
    suspended = world.sent[f"{handle.id}/{key}/suspended"]
    assert suspended.to.role == "dispatcher" and suspended.template == "compliance/suspended"
    assert world.sent[f"{handle.id}/{key}/coordinator-warning"].to.role == (
        "onboarding_coordinator"
    )
    reminders = [k for k in sent(world, handle) if k.startswith(f"{key}/reminder-")]
    assert reminders == [f"{key}/reminder-{n}" for n in (1, 2, 3, 4)]  # weekly until expiry
    assert current.escalated and current.details["suspended_for"] == ["driving_licence"]

    new_expiry = expires + timedelta(days=730)
    await renew(handle, new_expiry)
    current = await projected(world, handle.id, lambda s: s.status is CaseStatus.MONITORING)

    assert world.driver_status[driver_id] == [DriverStatus.SUSPENDED, DriverStatus.ACTIVE]
    assert any(k.startswith("reinstated-") for k in sent(world, handle))
    licence = next(d for d in current.details["documents"] if d["kind"] == "driving_licence")
    assert licence["expires_on"] == new_expiry.isoformat() and licence["sha256"]
    superseded = [r for r in world.driver_documents if r.status.value == "superseded"]
    assert [(r.kind, r.expires_on) for r in superseded] == [(LICENCE, expires)]
    assert await continued(time_env, handle.id) >= 2
    assert {k: n for k, n in Counter(world.send_log).items() if n > 1} == {}


async def test_a_replacement_before_the_expiry_avoids_the_suspension(
    time_env, task_queue, worker, world
):
    handle, expires = await watch(time_env, task_queue, licence_days=40)
    key = f"driving_licence-{expires.isoformat()}"
    await projected(world, handle.id, lambda s: s.status is CaseStatus.MONITORING)
    await time_env.sleep(12 * DAY)
    await projected(world, handle.id, lambda s: s.status is CaseStatus.RENEWAL_REQUESTED)

    await renew(handle, expires + timedelta(days=365))
    await projected(world, handle.id, lambda s: s.status is CaseStatus.MONITORING and s.version > 4)
    await time_env.sleep(40 * DAY)  # the old licence's dates pass
    current = await state(handle)

    assert current.status is CaseStatus.MONITORING and not current.escalated
    assert not any(k.startswith(f"{key}/suspended") for k in sent(world, handle))
    assert not any(k.startswith(f"{key}/reminder-2") for k in sent(world, handle))
    assert world.driver_status == {}


async def test_offboarding_ends_the_watch(time_env, task_queue, worker, world):
    handle, _ = await watch(time_env, task_queue, licence_days=200)
    driver_id = handle.id.removeprefix("driver-compliance-")
    await handle.execute_update(
        DriverComplianceWorkflow.offboard, OffboardInput(reason="moved away", by="ops:kim")
    )
    final = await handle.result()

    assert final.resolution is Resolution.OFFBOARDED
    assert world.driver_status[driver_id] == [DriverStatus.OFFBOARDED]
    assert "cancel" not in (await state(handle)).allowed_actions
