"""The unpaid-invoice case in simulated time: the ladder's exact send times, opening part-way
down, partial, full and over-payments, a repeated payment reference, a dispute and its
resolution, promises kept and broken, the dispatch hold, exact money, continue-as-new."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.cases import CancelInput, CaseSnapshot
from schemas.enums import CaseStatus, Resolution
from schemas.invoices import (
    Dispute,
    DisputeResolution,
    DunningPolicy,
    HoldRelease,
    Payment,
    Promise,
    UnpaidInvoiceInput,
    WriteOff,
)
from tests.workflows.invoice_fakes import InvoiceWorld
from tests.workflows.polling import projected
from tests.workflows.test_continue_as_new import continued
from workflows.unpaid_invoice import UnpaidInvoiceWorkflow

DAY = timedelta(days=1)


@pytest.fixture
def world() -> InvoiceWorld:
    return InvoiceWorld()


@pytest.fixture
async def worker(
    time_env: WorkflowEnvironment, task_queue: str, world: InvoiceWorld
) -> AsyncIterator[Worker]:
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[UnpaidInvoiceWorkflow],
        activities=world.activities(),
    ) as running:
        yield running


async def open_invoice(
    env: WorkflowEnvironment,
    task_queue: str,
    world: InvoiceWorld,
    *,
    due_in_days: int,
    amount: str = "1200.00",
    currency: str = "GBP",
    minor_units: int = 2,
    budget: int = 10_000,
) -> tuple[WorkflowHandle[UnpaidInvoiceWorkflow, CaseSnapshot], date]:
    today = (await env.get_current_time()).date()
    due = today + timedelta(days=due_in_days)
    invoice_id = f"INV-{uuid.uuid4().hex[:8]}"
    handle = await env.client.start_workflow(
        UnpaidInvoiceWorkflow.run,
        UnpaidInvoiceInput(
            invoice_id=invoice_id,
            client_id="demo-shop",
            amount=Decimal(amount),
            currency=currency,
            minor_units=minor_units,
            issued_on=due - timedelta(days=30),
            due_on=due,
            policy=DunningPolicy(history_event_budget=budget),
        ),
        id=f"unpaid-invoice-{invoice_id}",
        task_queue=task_queue,
    )
    await projected(world, handle.id, lambda s: s.status is CaseStatus.AWAITING_PAYMENT)
    return handle, due


def steps(world: InvoiceWorld, handle: WorkflowHandle) -> list[str]:
    return [key.removeprefix(f"{handle.id}/") for key in world.send_log]


def sent_at(world: InvoiceWorld, handle: WorkflowHandle) -> dict[str, datetime]:
    """When each message went out, from the projected timeline."""
    events = world.case_timelines.get(handle.id, {}).values()
    return {
        str(e.data["message_key"]).removeprefix(f"{handle.id}/"): e.at
        for e in events
        if e.kind == "message"
    }


async def pay(handle: WorkflowHandle, amount: str, reference: str | None = None) -> None:
    await handle.execute_update(
        UnpaidInvoiceWorkflow.record_payment,
        Payment(amount=Decimal(amount), paid_on=date.today(), reference=reference or amount),
    )


async def test_the_whole_ladder_goes_out_on_its_days_and_holds_dispatches(
    time_env, task_queue, worker, world
):
    handle, due = await open_invoice(time_env, task_queue, world, due_in_days=5)
    await time_env.sleep(36 * DAY)
    await projected(world, handle.id, lambda s: s.escalated)

    nine = datetime.combine(due, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    times = sent_at(world, handle)
    expected = {
        "before-due": nine - 3 * DAY,
        "due": nine,
        "overdue-7": nine + 7 * DAY,
        "overdue-14": nine + 14 * DAY,
        "overdue-14/account-manager": nine + 14 * DAY,
        "final-notice": nine + 21 * DAY,
        "dispatch-hold": nine + 30 * DAY,
    }
    for key, at in expected.items():
        assert abs(times[key] - at) < timedelta(minutes=5), (key, times[key], at)
    assert [h.hold for h in world.holds] == [True]
    assert world.sent[f"{handle.id}/overdue-14/account-manager"].to.contact_kind == (
        "account_manager"
    )
    assert world.sent[f"{handle.id}/dispatch-hold/escalation"].to.contact_kind == (
        "account_manager"
    )

    await pay(handle, "1200.00")
    final = await handle.result()
    assert final.resolution is Resolution.PAID
    assert [h.hold for h in world.holds] == [True, False]  # paid in full lifts the hold
    sent = steps(world, handle)
    assert all(key.startswith("hold-lifted/") for key in sent[sent.index("paid") + 1 :])


async def test_opened_part_way_down_it_sends_only_the_latest_due_step(
    time_env, task_queue, worker, world
):
    handle, _ = await open_invoice(time_env, task_queue, world, due_in_days=-15)
    await projected(world, handle.id, lambda s: s.next_step == "final-notice")

    assert steps(world, handle) == ["overdue-14", "overdue-14/account-manager"]
    current = await projected(world, handle.id, lambda s: True)
    assert current.details["steps_sent"] == ["overdue-14"]


async def test_a_partial_payment_keeps_the_ladder_going_and_the_rest_closes_it(
    time_env, task_queue, worker, world
):
    handle, _ = await open_invoice(time_env, task_queue, world, due_in_days=-8)
    await pay(handle, "200.00", "BANK-1")
    await pay(handle, "200.00", "BANK-1")  # the same payment reported twice
    current = await projected(world, handle.id, lambda s: s.details["balance"] == "1000.00")
    assert len(current.details["payments"]) == 1

    await time_env.sleep(7 * DAY)  # overdue-14 still goes out for the rest
    await projected(world, handle.id, lambda s: "overdue-14" in s.details["steps_sent"])
    assert world.sent[f"{handle.id}/overdue-14"].context["balance"] == "1000.00"

    await pay(handle, "1000.00", "BANK-2")
    final = await handle.result()
    assert final.resolution is Resolution.PAID and final.details["balance"] == "0.00"
    await time_env.sleep(30 * DAY)
    assert "final-notice" not in steps(world, handle)  # nothing after the case is paid


async def test_an_overpayment_closes_with_a_credit_and_tells_the_account_manager(
    time_env, task_queue, worker, world
):
    handle, _ = await open_invoice(time_env, task_queue, world, due_in_days=10)
    await pay(handle, "1250.00")
    final = await handle.result()

    assert final.resolution is Resolution.PAID and final.details["credit"] == "50.00"
    assert final.details["balance"] == "0.00"  # in the currency's minor units, not "0"
    overpaid = world.sent[f"{handle.id}/overpaid"]
    assert overpaid.to.contact_kind == "account_manager"


async def test_a_dispute_pauses_the_ladder_and_its_resolution_resumes_after_a_grace(
    time_env, task_queue, worker, world
):
    handle, _ = await open_invoice(time_env, task_queue, world, due_in_days=-8)
    await handle.execute_update(
        UnpaidInvoiceWorkflow.open_dispute,
        Dispute(reason="Charged for 40 stops, we had 30", disputed_amount=Decimal("300.00")),
    )
    await projected(world, handle.id, lambda s: s.status is CaseStatus.DISPUTED)
    await time_env.sleep(20 * DAY)  # overdue-14 and the final notice would have gone out
    assert steps(world, handle)[-1].startswith("dispute-")
    assert "overdue-14" not in steps(world, handle)

    before = (await projected(world, handle.id, lambda s: True)).details["steps_sent"]
    resolved_at = await time_env.get_current_time()
    await handle.execute_update(
        UnpaidInvoiceWorkflow.resolve_dispute,
        DisputeResolution(outcome="adjusted", adjusted_amount=Decimal("900.00")),
    )
    current = await projected(
        world,
        handle.id,
        lambda s: s.status is CaseStatus.AWAITING_PAYMENT and s.next_step_at is not None,
    )
    assert current.details["balance"] == "900.00"
    assert current.next_step_at is not None
    assert current.next_step_at >= resolved_at + timedelta(days=7) - timedelta(minutes=5)

    # After the grace the ladder resumes where it was: the next step only, on the new balance.
    await time_env.sleep(8 * DAY)
    resumed = await projected(
        world, handle.id, lambda s: len(s.details["steps_sent"]) > len(before)
    )
    (step,) = resumed.details["steps_sent"][len(before) :]
    assert world.sent[f"{handle.id}/{step}"].context["balance"] == "900.00"
    assert sent_at(world, handle)[step] >= resolved_at + timedelta(days=7) - timedelta(minutes=5)


async def test_a_kept_promise_closes_and_a_broken_one_resumes_with_a_missed_email(
    time_env, task_queue, worker, world
):
    handle, _ = await open_invoice(time_env, task_queue, world, due_in_days=-1)
    today = (await time_env.get_current_time()).date()
    await handle.execute_update(
        UnpaidInvoiceWorkflow.promise_to_pay,
        Promise(promised_on=today + timedelta(days=5), amount=Decimal("1200.00")),
    )
    await projected(world, handle.id, lambda s: s.status is CaseStatus.PAYMENT_PROMISED)
    await time_env.sleep(7 * DAY)
    current = await projected(world, handle.id, lambda s: s.escalated)

    assert any(key.startswith("promise-missed-") for key in steps(world, handle))
    assert current.status is CaseStatus.AWAITING_PAYMENT
    assert "overdue-7" not in current.details["steps_sent"]  # paused while promised

    kept, _ = await open_invoice(time_env, task_queue, world, due_in_days=-1)
    today = (await time_env.get_current_time()).date()
    await kept.execute_update(
        UnpaidInvoiceWorkflow.promise_to_pay,
        Promise(promised_on=today + timedelta(days=5), amount=Decimal("1200.00")),
    )
    await pay(kept, "1200.00")
    assert (await kept.result()).resolution is Resolution.PAID


async def test_money_finer_than_the_currency_is_refused_and_yen_has_no_minor_units(
    time_env, task_queue, worker, world
):
    handle, _ = await open_invoice(
        time_env, task_queue, world, due_in_days=10, amount="150000", currency="JPY", minor_units=0
    )
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await pay(handle, "1500.5")
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidRequest"
    assert cause.details[0]["field"] == "amount"

    await pay(handle, "150000")
    assert (await handle.result()).details["balance"] == "0"


async def test_a_write_off_closes_without_another_email(time_env, task_queue, worker, world):
    handle, _ = await open_invoice(time_env, task_queue, world, due_in_days=-8)
    await projected(world, handle.id, lambda s: s.next_step == "overdue-14")  # overdue-7 sent
    before = list(world.send_log)
    await handle.execute_update(UnpaidInvoiceWorkflow.write_off, WriteOff(reason="insolvent"))
    final = await handle.result()

    assert final.resolution is Resolution.WRITTEN_OFF
    assert world.send_log == before


async def test_the_ladder_continues_as_new_without_sending_twice(
    time_env, task_queue, worker, world
):
    handle, _ = await open_invoice(time_env, task_queue, world, due_in_days=5, budget=20)
    await time_env.sleep(36 * DAY)
    await projected(world, handle.id, lambda s: s.escalated)

    assert await continued(time_env, handle.id, 3) >= 3
    sent = [k for k in steps(world, handle) if "/" not in k]
    assert sent == ["before-due", "due", "overdue-7", "overdue-14", "final-notice", "dispatch-hold"]
    assert {k: n for k, n in Counter(world.send_log).items() if n > 1} == {}


async def current_details(handle: WorkflowHandle) -> str:
    """What the Temporal UI shows as the case's current details."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def held(env: WorkflowEnvironment, task_queue: str, world: InvoiceWorld) -> WorkflowHandle:
    """An invoice 31 days overdue: opened past the hold step, so it holds at once."""
    handle, _ = await open_invoice(env, task_queue, world, due_in_days=-31)
    await projected(world, handle.id, lambda s: s.details["dispatch_hold"] and s.escalated)
    return handle


async def test_the_hold_tells_each_depots_dispatcher_and_paying_tells_them_it_is_lifted(
    time_env, task_queue, worker, world
):
    handle = await held(time_env, task_queue, world)

    notices = {k: world.sent[f"{handle.id}/{k}"] for k in steps(world, handle) if "dispatcher" in k}
    assert sorted(notices) == [
        "dispatch-hold/dispatcher-depot-north",
        "dispatch-hold/dispatcher-depot-south",
    ]
    north = notices["dispatch-hold/dispatcher-depot-north"]
    assert north.template == "dunning/hold_set"
    assert (north.to.role, north.to.depot_id) == ("dispatcher", "depot-north")
    assert (
        north.context["hold_reason"]
        == f"invoice {handle.id.removeprefix('unpaid-invoice-')} unpaid"
    )
    current = await projected(world, handle.id, lambda s: True)
    assert current.details["hold_depots"] == ["depot-north", "depot-south"]
    assert "Dispatch hold: set on the client" in await current_details(handle)

    await pay(handle, "1200.00")
    final = await handle.result()

    assert [h.hold for h in world.holds] == [True, False]
    lifted = [k for k in steps(world, handle) if k.startswith("hold-lifted/")]
    assert sorted(lifted) == [
        "hold-lifted/account-manager",
        "hold-lifted/dispatcher-depot-north",
        "hold-lifted/dispatcher-depot-south",
    ]
    assert world.sent[f"{handle.id}/hold-lifted/account-manager"].to.contact_kind == (
        "account_manager"
    )
    assert world.sent[f"{handle.id}/paid"].context["hold_lifted"] is True
    assert final.details["dispatch_hold"] is False


async def test_an_admin_release_lifts_the_hold_and_the_ladder_goes_on_without_holding_again(
    time_env, task_queue, worker, world
):
    handle, _ = await open_invoice(time_env, task_queue, world, due_in_days=-29)
    await time_env.sleep(2 * DAY)
    await projected(world, handle.id, lambda s: s.details["dispatch_hold"])

    state = await handle.execute_update(
        UnpaidInvoiceWorkflow.release_hold, HoldRelease(reason="paying by card today", by="admin:a")
    )

    assert state.details["dispatch_hold"] is False
    assert [h.hold for h in world.holds] == [True, False]
    lifted = await projected(
        world,
        handle.id,
        lambda s: f"{handle.id}/hold-lifted/account-manager" in world.sent,
    )
    assert lifted.status is CaseStatus.AWAITING_PAYMENT  # still chasing the balance
    summaries = [e.summary for e in world.case_timelines[handle.id].values()]
    assert "Hold lifted: released by admin:a: paying by card today" in summaries
    reason = world.sent[f"{handle.id}/hold-lifted/dispatcher-depot-north"].context["hold_reason"]
    assert reason == "released by admin:a: paying by card today"

    with pytest.raises(WorkflowUpdateFailedError) as refused:  # nothing left to release
        await handle.execute_update(UnpaidInvoiceWorkflow.release_hold, HoldRelease(reason="again"))
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == "ActionNotAllowed"

    await pay(handle, "1200.00")
    await handle.result()
    assert [h.hold for h in world.holds] == [True, False]  # paying lifts nothing twice


async def test_cancelling_a_case_that_holds_dispatches_lifts_the_hold(
    time_env, task_queue, worker, world
):
    handle = await held(time_env, task_queue, world)

    await handle.execute_update(UnpaidInvoiceWorkflow.cancel, CancelInput(reason="voided"))
    final = await handle.result()

    assert final.status is CaseStatus.CANCELLED
    assert [h.hold for h in world.holds] == [True, False]
    assert f"{handle.id}/hold-lifted/account-manager" in world.sent


async def test_a_hold_with_no_depot_on_record_tells_only_the_account_manager(
    time_env, task_queue, worker, world
):
    world.depots = []
    handle = await held(time_env, task_queue, world)
    await projected(
        world, handle.id, lambda s: f"{handle.id}/dispatch-hold/escalation" in world.sent
    )

    assert not [k for k in steps(world, handle) if "dispatcher" in k]
    events = world.case_timelines[handle.id].values()
    assert any("No depot has handled" in e.summary for e in events)


async def test_the_temporal_ui_shows_the_balance_and_the_next_step(
    time_env, task_queue, worker, world
):
    handle, _ = await open_invoice(time_env, task_queue, world, due_in_days=10)
    await pay(handle, "200.00")
    await projected(world, handle.id, lambda s: s.details["balance"] == "1000.00")

    details = await current_details(handle)

    assert "Balance: 1000.00 GBP of 1200.00 GBP" in details
    assert "Next: before-due, " in details
    assert details.startswith(f"**Awaiting payment**: {CaseStatus.AWAITING_PAYMENT.description}")
    assert "Waiting on the client (payment)" in details
    history = await handle.fetch_history()
    timers = [
        event.user_metadata.summary
        for event in history.events
        if event.HasField("timer_started_event_attributes")
    ]
    (summary,) = await time_env.client.data_converter.decode(timers[:1], [str])
    assert summary == "send: dunning step before-due (due -3 d)"


async def test_an_overpayment_tells_the_credit_to_the_client_and_the_account_manager(
    time_env, task_queue, worker, world
):
    handle, _ = await open_invoice(time_env, task_queue, world, due_in_days=10)
    await pay(handle, "1250.00")
    await handle.result()

    assert world.sent[f"{handle.id}/overpaid"].context["credit"] == "50.00"
    thanks = world.sent[f"{handle.id}/paid"].context
    assert thanks["credit"] == "50.00" and thanks["days_overdue"] == 0
