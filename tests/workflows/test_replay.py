"""Committed histories under tests/histories/ must replay against the current workflow code,
so a change that would break running cases fails here first.

To record the histories again after a deliberate, versioned change:
    CASEDESK_RECORD_HISTORIES=1 .venv/bin/pytest tests/workflows/test_replay.py
"""

from __future__ import annotations

import os
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, Worker
from temporalio.workflow import NondeterminismError

from schemas.activities import MessageRequest, MessageResult
from schemas.cases import CancelInput, EscalateInput, NoteInput
from schemas.claims import DecisionInput
from schemas.documents import DocumentKind
from schemas.enums import CaseStatus, MessageStatus
from schemas.onboarding import OffboardInput, ReviewDocumentInput
from schemas.policies import ClaimPolicy
from schemas.reporting import (
    MarkSentRequest,
    PreparedReport,
    PrepareReportRequest,
    ReportKind,
    ReportRunInput,
)
from tests.conftest import TEST_CONVERTER
from tests.workflows.claim_fakes import ClaimWorld
from tests.workflows.fakes import FakeWorld
from tests.workflows.known_bad import SkipsTheAttemptRecord
from tests.workflows.test_damage_claim import PEOPLE_ITEMS, open_claim, supply, until
from tests.workflows.test_failed_delivery import case_input, choice, outcome, wait_for_status
from workflows.damage_claim import DamageClaimWorkflow
from workflows.driver_compliance import DriverComplianceWorkflow
from workflows.driver_onboarding import DriverOnboardingWorkflow
from workflows.failed_delivery import FailedDeliveryWorkflow
from workflows.invoicing_run import InvoicingRunWorkflow
from workflows.report_run import ReportRunWorkflow
from workflows.unpaid_invoice import UnpaidInvoiceWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "histories"


async def _delivered_after_reminder(env, handle) -> None:
    await env.sleep(timedelta(hours=25))
    await handle.execute_update(
        FailedDeliveryWorkflow.add_note, NoteInput(text="called", by="ops:a")
    )
    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice())
    await wait_for_status(handle, CaseStatus.REDELIVERY_SCHEDULED)
    await handle.execute_update(
        FailedDeliveryWorkflow.record_delivery_outcome, outcome("delivered")
    )


async def _returned_unanswered(env, handle) -> None:
    pass  # time skips through reminder, escalation and the window while awaiting the result


async def _escalated_then_cancelled(env, handle) -> None:
    await env.sleep(timedelta(hours=49))
    await handle.execute_update(FailedDeliveryWorkflow.escalate, EscalateInput(reason="VIP"))
    await handle.execute_update(FailedDeliveryWorkflow.cancel, CancelInput(reason="collected"))


SCENARIOS = {
    "failed_delivery_delivered_after_reminder": _delivered_after_reminder,
    "failed_delivery_returned_unanswered": _returned_unanswered,
    "failed_delivery_escalated_then_cancelled": _escalated_then_cancelled,
}


@pytest.mark.skipif(not os.environ.get("CASEDESK_RECORD_HISTORIES"), reason="recording only")
@pytest.mark.parametrize("name", SCENARIOS)
async def test_record_history(time_env, task_queue, name):
    world = FakeWorld()
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[FailedDeliveryWorkflow],
        activities=world.activities(),
    ):
        handle = await time_env.client.start_workflow(
            FailedDeliveryWorkflow.run,
            case_input(f"REPLAY-{name}"),
            id=f"failed-delivery-REPLAY-{name}",
            task_queue=task_queue,
        )
        await wait_for_status(handle, CaseStatus.WAITING_ON_CUSTOMER)
        await SCENARIOS[name](time_env, handle)
        await handle.result()
        history = await handle.fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())


async def _claim_more_information_then_paid(env, handle) -> None:
    await supply(handle, *PEOPLE_ITEMS)
    await until(handle, lambda s: s.status is CaseStatus.AWAITING_DECISION)
    await env.sleep(timedelta(days=8))  # one follow-up
    await handle.execute_update(
        DamageClaimWorkflow.record_decision,
        DecisionInput(decision="more_information", requested=[DocumentKind.POLICE_REPORT]),
    )
    await until(handle, lambda s: s.details["round"] == 2)
    await supply(handle, DocumentKind.POLICE_REPORT)
    await until(handle, lambda s: s.status is CaseStatus.AWAITING_DECISION)
    await handle.execute_update(
        DamageClaimWorkflow.record_decision,
        DecisionInput(decision="approved", amount=Decimal("129.90")),
    )


CLAIM_SCENARIOS = {"damage_claim_more_information_then_paid": _claim_more_information_then_paid}


@pytest.mark.skipif(not os.environ.get("CASEDESK_RECORD_HISTORIES"), reason="recording only")
@pytest.mark.parametrize("name", CLAIM_SCENARIOS)
async def test_record_claim_history(time_env, task_queue, name):
    world = ClaimWorld()
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[DamageClaimWorkflow],
        activities=world.activities(),
    ):
        handle = await open_claim(time_env, task_queue)
        await CLAIM_SCENARIOS[name](time_env, handle)
        await handle.result()
        history = await handle.fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())


async def _continued_failed_delivery(env, handle) -> None:
    await env.sleep(timedelta(hours=25))  # the reminder fires in a continued run
    await handle.execute_update(FailedDeliveryWorkflow.choose_redelivery, choice())
    await wait_for_status(handle, CaseStatus.REDELIVERY_SCHEDULED)
    await handle.execute_update(
        FailedDeliveryWorkflow.record_delivery_outcome, outcome("delivered")
    )


async def _continued_claim(env, handle) -> None:
    await env.sleep(timedelta(hours=25))  # reminder 1 fires in a continued run
    await supply(handle, *PEOPLE_ITEMS)
    await until(handle, lambda s: s.status is CaseStatus.AWAITING_DECISION)
    await env.sleep(timedelta(days=8))  # one follow-up, in a continued run
    await handle.execute_update(
        DamageClaimWorkflow.record_decision,
        DecisionInput(decision="approved", amount=Decimal("129.90")),
    )


# Cases that continue as new (a history budget of 20 events): the first run's history ends
# in ContinueAsNew; the last run's starts from the carried state and runs to the end.
CONTINUED_SCENARIOS = {
    "failed_delivery_continued": _continued_failed_delivery,
    "damage_claim_continued": _continued_claim,
}
CONTINUED_HISTORIES = {f"{name}_{run}" for name in CONTINUED_SCENARIOS for run in ("first", "last")}


@pytest.mark.skipif(not os.environ.get("CASEDESK_RECORD_HISTORIES"), reason="recording only")
@pytest.mark.parametrize("name", CONTINUED_SCENARIOS)
async def test_record_continued_history(time_env, task_queue, name):
    world = ClaimWorld()
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[FailedDeliveryWorkflow, DamageClaimWorkflow],
        activities=world.activities(),
    ):
        if name.startswith("failed_delivery"):
            inp = case_input(f"REPLAY-{name}", history_event_budget=20)
            handle = await time_env.client.start_workflow(
                FailedDeliveryWorkflow.run,
                inp,
                id=f"failed-delivery-{inp.shipment_id}",
                task_queue=task_queue,
            )
            await wait_for_status(handle, CaseStatus.WAITING_ON_CUSTOMER)
        else:
            handle = await open_claim(
                time_env, task_queue, policy=ClaimPolicy(history_event_budget=20)
            )
        first_run = (await handle.describe()).raw_description.workflow_execution_info.first_run_id
        await CONTINUED_SCENARIOS[name](time_env, handle)
        await handle.result()
        first = time_env.client.get_workflow_handle(handle.id, run_id=first_run)
        (HISTORIES / f"{name}_first.json").write_text((await first.fetch_history()).to_json())
        last = time_env.client.get_workflow_handle(handle.id)
        (HISTORIES / f"{name}_last.json").write_text((await last.fetch_history()).to_json())


async def _record_driver_histories(env, task_queue) -> None:
    """An onboarding with a rejection and a resubmission, activated (which starts the
    watch); the watch then suspends on an expiry, reinstates on a replacement, continues as
    new on the way (a budget of 40 events) and ends with offboarding."""
    from tests.workflows.driver_fakes import DriverWorld
    from tests.workflows.polling import projected
    from tests.workflows.test_driver_compliance import renew, watch
    from tests.workflows.test_driver_onboarding import approve, onboarding, send, start

    world = DriverWorld()
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[DriverOnboardingWorkflow, DriverComplianceWorkflow],
        activities=world.activities(),
    ):
        inp = onboarding()
        handle = await start(env, task_queue, inp)
        first = await send(handle, DocumentKind.TAX_FORM)
        await handle.execute_update(
            DriverOnboardingWorkflow.review_document,
            ReviewDocumentInput(document_id=first, decision="rejected", reason="unsigned"),
        )
        for kind in inp.checklist:
            await approve(handle, await send(handle, kind), kind)
        await handle.result()
        history = await handle.fetch_history()
        (HISTORIES / "driver_onboarding_activated.json").write_text(history.to_json())

        watched, expires = await watch(env, task_queue, licence_days=40, budget=40)
        first_run = (await watched.describe()).raw_description.workflow_execution_info.first_run_id
        await env.sleep(timedelta(days=43))
        await projected(world, watched.id, lambda s: s.status is CaseStatus.SUSPENDED)
        await renew(watched, expires + timedelta(days=730))
        await projected(world, watched.id, lambda s: s.status is CaseStatus.MONITORING)
        await watched.execute_update(
            DriverComplianceWorkflow.offboard, OffboardInput(reason="left", by="ops:kim")
        )
        await watched.result()
        runs = {
            "first": env.client.get_workflow_handle(watched.id, run_id=first_run),
            "last": env.client.get_workflow_handle(watched.id),
        }
        for run, run_handle in runs.items():
            history = await run_handle.fetch_history()
            (HISTORIES / f"driver_compliance_continued_{run}.json").write_text(history.to_json())


async def _record_invoice_history(env, task_queue) -> None:
    """An invoice opened before its due date that continues as new down the ladder (a
    budget of 20 events), takes a partial payment and is paid in full."""
    from tests.workflows.invoice_fakes import InvoiceWorld
    from tests.workflows.polling import projected
    from tests.workflows.test_unpaid_invoice import open_invoice, pay

    world = InvoiceWorld()
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[UnpaidInvoiceWorkflow],
        activities=world.activities(),
    ):
        handle, _ = await open_invoice(env, task_queue, world, due_in_days=5, budget=20)
        first_run = (await handle.describe()).raw_description.workflow_execution_info.first_run_id
        await env.sleep(timedelta(days=20))
        await projected(world, handle.id, lambda s: "overdue-14" in s.details["steps_sent"])
        await pay(handle, "200.00", "BANK-1")
        await projected(world, handle.id, lambda s: s.details["balance"] == "1000.00")
        await pay(handle, "1000.00", "BANK-2")
        await handle.result()
        runs = {
            "first": env.client.get_workflow_handle(handle.id, run_id=first_run),
            "last": env.client.get_workflow_handle(handle.id),
        }
        for run, run_handle in runs.items():
            history = await run_handle.fetch_history()
            (HISTORIES / f"unpaid_invoice_continued_{run}.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("CASEDESK_RECORD_HISTORIES"), reason="recording only")
async def test_record_invoice_history(time_env, task_queue):
    await _record_invoice_history(time_env, task_queue)


@pytest.mark.skipif(not os.environ.get("CASEDESK_RECORD_HISTORIES"), reason="recording only")
async def test_record_invoice_hold_history(time_env, task_queue):
    """An invoice opened 31 days overdue holds the client's dispatches at once (the
    dispatchers told), an admin releases the hold, and it is paid with a credit."""
    from schemas.invoices import HoldRelease
    from tests.workflows.invoice_fakes import InvoiceWorld
    from tests.workflows.polling import projected
    from tests.workflows.test_unpaid_invoice import open_invoice, pay

    world = InvoiceWorld()
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[UnpaidInvoiceWorkflow],
        activities=world.activities(),
    ):
        handle, _ = await open_invoice(time_env, task_queue, world, due_in_days=-31)
        await projected(world, handle.id, lambda s: s.details["dispatch_hold"] and s.escalated)
        await handle.execute_update(
            UnpaidInvoiceWorkflow.release_hold, HoldRelease(reason="card payment", by="admin:a")
        )
        await pay(handle, "1250.00", "CARD-1")
        await handle.result()
        history = await handle.fetch_history()
        (HISTORIES / "unpaid_invoice_hold_released_then_paid.json").write_text(history.to_json())


INVOICE_HISTORIES = {
    "unpaid_invoice_continued_first",
    "unpaid_invoice_continued_last",
    "unpaid_invoice_hold_released_then_paid",
}


async def _record_invoicing_run_history(env, task_queue) -> None:
    """A run that issues an invoice, emails it with both documents and opens its case."""
    from tests.workflows.invoicing_fakes import InvoicingWorld, stop
    from tests.workflows.test_invoicing_run import start_run

    world = InvoicingWorld()
    world.stops = [stop("SHP-1", date(2026, 11, 3)), stop("SHP-2", date(2026, 11, 6), "failed")]
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[InvoicingRunWorkflow, UnpaidInvoiceWorkflow],
        activities=world.activities(),
    ):
        handle = await start_run(env, task_queue, run_id="invoicing-run-acme-2026-11-01-2026-11-30")
        await handle.result()
        history = await handle.fetch_history()
        (HISTORIES / "invoicing_run_issued.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("CASEDESK_RECORD_HISTORIES"), reason="recording only")
async def test_record_invoicing_run_history(time_env, task_queue):
    await _record_invoicing_run_history(time_env, task_queue)


INVOICING_HISTORIES = {"invoicing_run_issued"}


async def _record_report_run_history(env, task_queue) -> None:
    """A weekly report emailed to two reporting contacts, the account manager copied."""

    @activity.defn(name="prepare_report")
    async def prepare_report(request: PrepareReportRequest) -> PreparedReport:
        return PreparedReport(
            report_id="report-weekly-acme-2026-W48",
            client_id="acme",
            kind=ReportKind.WEEKLY,
            period="2026-W48",
            sent_before=False,
            recipients=[uuid.UUID(int=1), uuid.UUID(int=2)],
            account_manager=True,
            template="reports/weekly_report",
            context={"client_name": "Acme Retail", "period": "2026-W48"},
        )

    @activity.defn(name="send_message")
    async def send_message(request: MessageRequest) -> MessageResult:
        return MessageResult(
            message_id=str(uuid.uuid4()),
            key=request.key,
            status=MessageStatus.SENT,
            recipient_email="someone@example.com",
        )

    @activity.defn(name="mark_report_sent")
    async def mark_report_sent(request: MarkSentRequest) -> None:
        return None

    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ReportRunWorkflow],
        activities=[prepare_report, send_message, mark_report_sent],
    ):
        handle = await env.client.start_workflow(
            ReportRunWorkflow.run,
            ReportRunInput(client_id="acme", kind=ReportKind.WEEKLY, period="2026-W48"),
            id="report-weekly-acme-2026-W48",
            task_queue=task_queue,
        )
        await handle.result()
        history = await handle.fetch_history()
        (HISTORIES / "report_run_weekly_sent.json").write_text(history.to_json())


@pytest.mark.skipif(not os.environ.get("CASEDESK_RECORD_HISTORIES"), reason="recording only")
async def test_record_report_run_history(time_env, task_queue):
    await _record_report_run_history(time_env, task_queue)


REPORT_HISTORIES = {"report_run_weekly_sent"}

DRIVER_HISTORIES = {
    "driver_onboarding_activated",
    "driver_compliance_continued_first",
    "driver_compliance_continued_last",
}


@pytest.mark.skipif(not os.environ.get("CASEDESK_RECORD_HISTORIES"), reason="recording only")
async def test_record_driver_histories(time_env, task_queue):
    await _record_driver_histories(time_env, task_queue)


def _histories() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_histories_are_committed():
    expected = (
        set(SCENARIOS)
        | set(CLAIM_SCENARIOS)
        | CONTINUED_HISTORIES
        | DRIVER_HISTORIES
        | INVOICE_HISTORIES
        | INVOICING_HISTORIES
        | REPORT_HISTORIES
    )
    assert {p.stem for p in _histories()} == expected


@pytest.mark.parametrize("path", _histories(), ids=lambda p: p.stem)
async def test_committed_history_replays_against_the_current_code(path: Path):
    replayer = Replayer(
        workflows=[
            FailedDeliveryWorkflow,
            DamageClaimWorkflow,
            DriverOnboardingWorkflow,
            DriverComplianceWorkflow,
            UnpaidInvoiceWorkflow,
            InvoicingRunWorkflow,
            ReportRunWorkflow,
        ],
        data_converter=TEST_CONVERTER,
    )
    result = await replayer.replay_workflow(_load(path))
    assert result.replay_failure is None


async def test_an_incompatible_change_is_caught_by_replay():
    replayer = Replayer(workflows=[SkipsTheAttemptRecord], data_converter=TEST_CONVERTER)
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(
            _load(HISTORIES / "failed_delivery_delivered_after_reminder.json")
        )


async def test_an_encrypted_history_replays_with_the_test_key_and_not_without_it():
    """Histories recorded with the codec hold ciphertext: they replay with the key only."""
    from temporalio.contrib.pydantic import pydantic_data_converter

    history = _load(HISTORIES / "unpaid_invoice_hold_released_then_paid.json")
    assert "YmluYXJ5L2VuY3J5cHRlZA" in history.to_json()  # "binary/encrypted", base64
    keyed = Replayer(workflows=[UnpaidInvoiceWorkflow], data_converter=TEST_CONVERTER)
    assert (await keyed.replay_workflow(history)).replay_failure is None

    keyless = Replayer(workflows=[UnpaidInvoiceWorkflow], data_converter=pydantic_data_converter)
    result = await keyless.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
