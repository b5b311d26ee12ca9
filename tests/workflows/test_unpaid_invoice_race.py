"""The race the unpaid-invoice case must win: a payment that arrives in the same instant a
reminder's timer fires. Nothing may be sent after the balance is paid.

The instant is made exact on a real dev server (the time-skipping server cannot hold a fired
timer while no worker runs): the worker stops while the case waits on its next step's timer;
the timer fires with nobody polling; the payment is sent; a new worker then gets the fired
timer and the payment in one workflow task. The case must apply the payment before anything
the timer starts can send: the handler lowers the balance before its first await, the ladder's
wait sees the balance paid, and the step itself checks again at the moment of sending. (A
handler that applied the payment after an await lets the reminder out: this test then fails
with `['due', 'paid']`.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.temporal import SEARCH_ATTRIBUTES
from schemas.enums import CaseStatus, Resolution
from schemas.invoices import DunningPolicy, DunningStep, Payment, UnpaidInvoiceInput
from tests.conftest import TEST_CONVERTER, _bin
from tests.workflows.invoice_fakes import InvoiceWorld
from tests.workflows.polling import projected
from workflows.unpaid_invoice import UnpaidInvoiceWorkflow

STEP_IN = timedelta(seconds=5)


@pytest.fixture
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_bin("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
    )
    async with env:
        yield env


async def timer_started(handle: WorkflowHandle) -> None:
    """The case waits on the step's timer (its history holds the timer's start)."""
    for _ in range(100):
        async for event in handle.fetch_history_events():
            if event.HasField("timer_started_event_attributes"):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the case never started the step's timer")


def worker(env: WorkflowEnvironment, task_queue: str, world: InvoiceWorld) -> Worker:
    return Worker(
        env.client,
        task_queue=task_queue,
        workflows=[UnpaidInvoiceWorkflow],
        activities=world.activities(),
    )


async def test_a_payment_arriving_as_the_reminder_fires_sends_no_reminder(dev_env, task_queue):
    world = InvoiceWorld()
    now = datetime.now(UTC)
    # One reminder, due a few seconds from now (the ladder is anchored at midnight UTC of the
    # due date, so its offset is the time of day the step falls due).
    due_on = now.date()
    step_at = now + STEP_IN
    offset = step_at - datetime.combine(due_on, time(0), tzinfo=UTC)
    policy = DunningPolicy(
        send_at=time(0),
        steps=(DunningStep(name="due", offset=offset, template="dunning/due_today"),),
    )
    invoice_id = f"INV-{uuid.uuid4().hex[:8]}"
    async with worker(dev_env, task_queue, world):
        handle = await dev_env.client.start_workflow(
            UnpaidInvoiceWorkflow.run,
            UnpaidInvoiceInput(
                invoice_id=invoice_id,
                client_id="demo-shop",
                amount=Decimal("500.00"),
                currency="GBP",
                minor_units=2,
                issued_on=due_on - timedelta(days=30),
                due_on=due_on,
                policy=policy,
            ),
            id=f"unpaid-invoice-{invoice_id}",
            task_queue=task_queue,
        )
        waiting = await projected(
            world, handle.id, lambda s: s.status is CaseStatus.AWAITING_PAYMENT
        )
        assert waiting.next_step == "due"
        await timer_started(handle)
    assert datetime.now(UTC) < step_at, "the case took too long to open; the race was not run"

    # Nobody polls: the step's timer fires on the server, then the payment arrives.
    await asyncio.sleep((step_at - datetime.now(UTC)).total_seconds() + 1)
    payment = asyncio.create_task(
        handle.execute_update(
            UnpaidInvoiceWorkflow.record_payment,
            Payment(amount=Decimal("500.00"), paid_on=date.today(), reference="BACS-1"),
        )
    )
    await asyncio.sleep(1)  # the update request reaches the server before a worker polls

    async with worker(dev_env, task_queue, world):
        state = await asyncio.wait_for(payment, timeout=30)
        final = await asyncio.wait_for(handle.result(), timeout=30)

    assert state.details["balance"] == "0.00"
    assert final.resolution is Resolution.PAID
    sent = [key.removeprefix(f"{handle.id}/") for key in world.send_log]
    assert sent == ["paid"]  # the thank-you, and no reminder after the money arrived
    history = [event async for event in handle.fetch_history_events()]
    fired = [e for e in history if e.HasField("timer_fired_event_attributes")]
    assert fired, "the step's timer never fired: the race did not happen"
