"""The invoicing run in simulated time, with the activities faked at the edge and the real
arithmetic: an invoice issued, emailed with both documents and its unpaid-invoice case open;
an empty period; a second run answered with the first invoice, nothing sent twice; a pricing
error failing the run with its type; an invoice email that cannot be sent opening the case
escalated; a failed-delivery case's attempt billed at the agreement's fee."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.enums import CaseStatus, StopOutcome
from schemas.invoicing import (
    NOT_SCHEDULED,
    PRICING_FAILED,
    InvoicingRunInput,
    InvoicingRunResult,
    RunOutcome,
    run_workflow_id,
)
from schemas.pricing import BillableStop, LineKind
from tests.workflows.invoicing_fakes import CLIENT, InvoicingWorld, stop
from tests.workflows.polling import projected
from tests.workflows.test_failed_delivery import case_input, wait_for_status
from workflows.failed_delivery import FailedDeliveryWorkflow
from workflows.invoicing_run import InvoicingRunWorkflow
from workflows.unpaid_invoice import UnpaidInvoiceWorkflow

NOV_1, NOV_30 = dt.date(2026, 11, 1), dt.date(2026, 11, 30)


@pytest.fixture
def world() -> InvoicingWorld:
    return InvoicingWorld(
        stops=[
            stop("SHP-1", dt.date(2026, 11, 3)),
            stop("SHP-2", dt.date(2026, 11, 4)),
            stop("SHP-3", dt.date(2026, 11, 5), zone="A", residential=False),
            stop("SHP-4", dt.date(2026, 11, 6), outcome="failed"),
        ]
    )


@pytest.fixture
async def worker(
    time_env: WorkflowEnvironment, task_queue: str, world: InvoicingWorld
) -> AsyncIterator[Worker]:
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[InvoicingRunWorkflow, UnpaidInvoiceWorkflow, FailedDeliveryWorkflow],
        activities=world.activities(),
    ) as running:
        yield running


async def start_run(
    env: WorkflowEnvironment,
    task_queue: str,
    start: dt.date = NOV_1,
    end: dt.date = NOV_30,
    *,
    run_id: str | None = None,
) -> WorkflowHandle[InvoicingRunWorkflow, InvoicingRunResult]:
    return await env.client.start_workflow(
        InvoicingRunWorkflow.run,
        InvoicingRunInput(client_id=CLIENT, period_start=start, period_end=end, requested_by="ops"),
        id=run_id or f"{run_workflow_id(CLIENT, start, end)}-{uuid.uuid4().hex[:6]}",
        task_queue=task_queue,
    )


async def test_an_invoice_is_issued_emailed_with_both_documents_and_its_case_opened(
    time_env, task_queue, worker, world
):
    result = await (await start_run(time_env, task_queue)).result()

    assert result.outcome is RunOutcome.ISSUED
    assert (result.invoice_id, str(result.total), result.currency) == (
        "INV-ACME-000001",
        "60.00",
        "GBP",
    )
    assert result.emailed and result.email_problem is None
    [email] = world.sent.values()
    assert email.key == "unpaid-invoice-INV-ACME-000001/invoice"
    assert email.template == "invoicing/invoice_issued"
    assert (email.to.role, email.to.contact_kind) == ("client_contact", "billing")
    assert [a.content_type for a in email.attachments] == ["application/pdf", "text/csv"]
    assert (email.context["amount"], email.context["due_on"]) == ("60.00", result_due(world))
    assert result.case_id == "unpaid-invoice-INV-ACME-000001"
    case = await projected(world, result.case_id, lambda s: s.status is CaseStatus.AWAITING_PAYMENT)
    assert case.details["amount"] == "60.00"
    assert case.details["documents"][0]["content_type"] == "application/pdf"
    assert [o.invoice_id for o in world.openings] == ["INV-ACME-000001"]
    assert world.synced == []  # a run ops started leaves the schedule alone


def result_due(world: InvoicingWorld) -> str:
    [facts] = world.invoices.values()
    return facts.due_on.isoformat()


async def test_a_period_without_stops_makes_no_invoice_and_says_so(
    time_env, task_queue, worker, world
):
    december = (dt.date(2026, 12, 1), dt.date(2026, 12, 31))

    result = await (await start_run(time_env, task_queue, *december)).result()

    assert result.outcome is RunOutcome.NO_RECORDS
    assert result.invoice_id is None and result.case_id is None
    assert result.message == "no stops recorded for acme between 2026-12-01 and 2026-12-31"
    assert world.sent == {} and world.openings == []


async def test_a_second_run_answers_with_the_first_invoice_and_sends_nothing_twice(
    time_env, task_queue, worker, world
):
    first = await (await start_run(time_env, task_queue)).result()
    await projected(world, "unpaid-invoice-INV-ACME-000001", lambda s: s.version > 1)

    second = await (await start_run(time_env, task_queue)).result()

    assert second.outcome is RunOutcome.EXISTING
    assert (second.invoice_id, second.total, second.case_id) == (
        first.invoice_id,
        first.total,
        first.case_id,
    )
    assert list(world.sent) == ["unpaid-invoice-INV-ACME-000001/invoice"]
    assert world.send_log.count("unpaid-invoice-INV-ACME-000001/invoice") == 2  # once a duplicate
    assert len(world.invoices) == 1
    cases = {p.case_id for p in world.projections}
    assert cases == {"unpaid-invoice-INV-ACME-000001"}


async def test_a_period_that_cannot_be_priced_fails_the_run_with_its_type(
    time_env, task_queue, worker, world
):
    world.stops.append(stop("SHP-9", dt.date(2026, 11, 9), zone="Z"))
    handle = await start_run(time_env, task_queue)

    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()

    cause = raised.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == PRICING_FAILED
    assert list(cause.details[0]) == ["zone 'Z' is not in the agreement from 2026-01-01 (1 stop)"]
    assert world.sent == {}  # no invoice, and ops asked: nobody else to tell
    assert world.invoices == {}


async def test_a_run_without_a_period_needs_a_schedule(time_env, task_queue, worker, world):
    handle = await time_env.client.start_workflow(
        InvoicingRunWorkflow.run,
        InvoicingRunInput(client_id=CLIENT, cycle="monthly"),
        id=f"invoicing-run-{CLIENT}-by-hand",
        task_queue=task_queue,
    )

    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()

    assert isinstance(raised.value.cause, ApplicationError)
    assert raised.value.cause.type == NOT_SCHEDULED
    assert world.issue_requests == []


async def test_an_invoice_email_that_cannot_be_sent_opens_the_case_escalated(
    time_env, task_queue, worker, world
):
    world.message_failure = lambda request: (
        "RecipientNotFound" if request.template == "invoicing/invoice_issued" else None
    )

    result = await (await start_run(time_env, task_queue)).result()

    assert result.outcome is RunOutcome.ISSUED and not result.emailed
    assert result.email_problem == "RecipientNotFound: RecipientNotFound for client_contact"
    case = await projected(world, result.case_id or "", lambda s: s.escalated)
    assert "did not reach the billing contact: RecipientNotFound" in (case.escalation_reason or "")
    for _ in range(100):  # the escalation email follows the flag
        if "unpaid-invoice-INV-ACME-000001/invoice-not-delivered" in world.sent:
            break
        await asyncio.sleep(0.02)
    assert "unpaid-invoice-INV-ACME-000001/invoice-not-delivered" in world.sent
    assert world.sent_to("client_contact") == ["case/escalation"]  # the account manager


async def test_a_failed_delivery_cases_attempt_is_billed_at_the_agreements_fee(
    time_env, task_queue, worker, world
):
    """The case records its attempt (its policy quotes 17.00); the invoice for the period
    bills it as a failed-attempt line at the agreement's 4.00."""
    world.stops.clear()
    inp = case_input(f"SHP-{uuid.uuid4().hex[:6]}", failed_attempt_fee_cents=1700)
    case = await time_env.client.start_workflow(
        FailedDeliveryWorkflow.run,
        inp,
        id=f"failed-delivery-{inp.shipment_id}",
        task_queue=task_queue,
    )
    await wait_for_status(case, CaseStatus.WAITING_ON_CUSTOMER)
    [attempt] = world.attempts
    assert attempt.fee_cents == 1700
    # What record_failed_attempt writes is a failed delivery record of the stop.
    world.stops.append(
        BillableStop(
            shipment_id=attempt.shipment_id,
            attempt_number=attempt.attempt.attempt_number,
            attempted_at=attempt.attempt.attempted_at,
            outcome=StopOutcome.FAILED,
        )
    )
    day = attempt.attempt.attempted_at.date()
    world.agreements = [world.agreements[0].model_copy(update={"minimum_charge_per_invoice": 0})]

    result = await (await start_run(time_env, task_queue, day, day)).result()

    draft = world.drafts[result.invoice_id or ""]
    [line] = draft.lines
    assert (line.kind, line.quantity, str(line.unit_price)) == (LineKind.FAILED_ATTEMPT, 1, "4.00")
    assert (str(result.total), result.currency) == ("4.80", "GBP")
