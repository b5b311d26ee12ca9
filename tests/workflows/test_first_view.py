"""The API answers an opening from `schemas.openings` without waiting for a worker; these
tests hold that answer against the workflow itself: after its first task (its activities not
run, so nothing else has moved) each type's case is open with exactly the deadline, first step
and allowed actions its type's `first_view` gives for the same input and `opened_at`; a case
opened without `opened_at` (by another case) keeps its clock at its first task."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import BaseModel
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.case_types import (
    DAMAGE_CLAIM,
    DRIVER_ONBOARDING,
    FAILED_DELIVERY,
    UNPAID_INVOICE,
    CaseTypeSpec,
)
from schemas.cases import CaseState, Customer
from schemas.claims import DamageClaimInput
from schemas.contracts import STATE_QUERY
from schemas.enums import CaseStatus, FailureReason
from schemas.invoices import UnpaidInvoiceInput
from schemas.policies import ClaimPolicy
from tests.workflows.test_driver_onboarding import onboarding as onboarding_input
from tests.workflows.test_failed_delivery import case_input
from workflows.damage_claim import DamageClaimWorkflow
from workflows.driver_onboarding import DriverOnboardingWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow
from workflows.unpaid_invoice import UnpaidInvoiceWorkflow


def key() -> str:
    return uuid.uuid4().hex[:10]


def failed_delivery(now: datetime) -> BaseModel:
    return case_input(f"SHP-{key()}")


def refused(now: datetime) -> BaseModel:
    return case_input(f"SHP-{key()}", reason=FailureReason.REFUSED)


def claim(now: datetime, age: timedelta = timedelta(hours=2)) -> BaseModel:
    return DamageClaimInput(
        shipment_id=f"SHP-{key()}",
        client_id="demo-shop",
        depot_id="depot-north",
        claim_type="damaged",
        reported_by="customer",
        delivery_event_at=now - age,
        declared_value=Decimal("49.90"),
        currency="GBP",
        customer=Customer(name="Ada Customer", email="ada@example.com"),
        policy=ClaimPolicy(),
    )


def late_claim(now: datetime) -> BaseModel:
    return claim(now, timedelta(hours=80))  # past the 72-hour filing window


def onboarding(now: datetime) -> BaseModel:
    return onboarding_input()


def invoice(now: datetime, due_in: int = -8) -> BaseModel:
    due = now.date() + timedelta(days=due_in)
    return UnpaidInvoiceInput(
        invoice_id=f"INV-{key()}",
        client_id="demo-shop",
        amount=Decimal("120.00"),
        currency="GBP",
        minor_units=2,
        issued_on=due - timedelta(days=30),
        due_on=due,
    )


def invoice_not_due(now: datetime) -> BaseModel:
    return invoice(now, due_in=20)


OPENINGS: list[tuple[CaseTypeSpec, type, Callable[[datetime], BaseModel], str]] = [
    (FAILED_DELIVERY, FailedDeliveryWorkflow, failed_delivery, "shipment_id"),
    (FAILED_DELIVERY, FailedDeliveryWorkflow, refused, "shipment_id"),
    (DAMAGE_CLAIM, DamageClaimWorkflow, claim, "shipment_id"),
    (DAMAGE_CLAIM, DamageClaimWorkflow, late_claim, "shipment_id"),
    (DRIVER_ONBOARDING, DriverOnboardingWorkflow, onboarding, "driver_id"),
    (UNPAID_INVOICE, UnpaidInvoiceWorkflow, invoice, "invoice_id"),
    (UNPAID_INVOICE, UnpaidInvoiceWorkflow, invoice_not_due, "invoice_id"),
]


async def first_state(
    env: WorkflowEnvironment, task_queue: str, workflow: type, inp: BaseModel, case_id: str
) -> CaseState:
    """The case's state after its first workflow task, on a worker that runs no activity."""
    async with Worker(env.client, task_queue=task_queue, workflows=[workflow]):
        run = workflow.run  # type: ignore[attr-defined]
        handle = await env.client.start_workflow(run, inp, id=case_id, task_queue=task_queue)
        for _ in range(100):
            try:
                return await handle.query(STATE_QUERY, result_type=CaseState)
            except (WorkflowQueryFailedError, RPCError):
                await asyncio.sleep(0.05)  # the first task has not completed yet
    raise AssertionError("the case never answered its state query")


@pytest.mark.parametrize("opened_by_api", [True, False], ids=["opened_at", "first_task"])
@pytest.mark.parametrize(
    ("spec", "workflow", "build", "business_key"),
    OPENINGS,
    ids=[build.__name__ for _, _, build, _ in OPENINGS],
)
async def test_the_workflow_opens_as_its_types_first_view_says(
    time_env: WorkflowEnvironment,
    task_queue: str,
    spec: CaseTypeSpec,
    workflow: type,
    build: Callable[[datetime], BaseModel],
    business_key: str,
    opened_by_api: bool,
):
    now = await time_env.get_current_time()
    inp = build(now)
    taken_in = now - timedelta(minutes=3)  # the API took it in; the first task ran later
    if opened_by_api:
        inp = inp.model_copy(update={"opened_at": taken_in})
    case_id = spec.case_type.workflow_id(getattr(inp, business_key))

    state = await first_state(time_env, task_queue, workflow, inp, case_id)

    assert spec.first_view is not None
    if opened_by_api:
        assert state.opened_at == taken_in
    else:
        assert state.opened_at >= now  # its first task's time
    first = spec.first_view(inp, state.opened_at)
    assert state.status is CaseStatus.OPEN
    assert (state.deadline_at, state.next_step, state.next_step_at) == (
        first.deadline_at,
        first.next_step,
        first.next_step_at,
    )
    assert state.allowed_actions == list(first.allowed_actions)
