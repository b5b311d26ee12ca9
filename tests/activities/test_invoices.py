"""The dispatch hold activities of the unpaid-invoice case, on SQLite and PostgreSQL: setting
the hold records the reason, the case and the moment; setting it again changes nothing; only
the case that set it can lift it; an unknown client fails without retry. The depots told of a
hold are those that handled the client's shipments or cases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ApplicationError

from activities.invoices import InvoiceActivities
from activities.records import UNKNOWN_REFERENCE
from core.db import SessionFactory
from schemas.enums import CaseStatus, CaseType, RecordSource, StopOutcome
from schemas.invoices import ClientDepotsRequest, DispatchHoldChange
from schemas.tables import Case, Client, DeliveryRecord, Depot, Shipment
from tests.activities.conftest import CLIENT_ID, DEPOT_ID, OTHER_DEPOT_ID

CASE = "unpaid-invoice-inv-1"
OTHER_CASE = "unpaid-invoice-inv-2"


@pytest.fixture
def invoices(reference_data: SessionFactory) -> InvoiceActivities:
    return InvoiceActivities(reference_data)


def change(*, hold: bool, case_id: str = CASE, reason: str = "invoice inv-1 unpaid"):
    return DispatchHoldChange(client_id=CLIENT_ID, case_id=case_id, hold=hold, reason=reason)


async def client(sessions: SessionFactory) -> Client:
    async with sessions() as session:
        found = await session.get(Client, CLIENT_ID)
        assert found is not None
        return found


async def test_set_records_the_reason_the_case_and_since_when(
    invoices, reference_data, activity_env
):
    before = datetime.now(UTC)
    await activity_env.run(invoices.set_dispatch_hold, change(hold=True))

    held = await client(reference_data)
    assert held.dispatch_hold is True
    assert held.dispatch_hold_reason == "invoice inv-1 unpaid"
    assert held.dispatch_hold_case_id == CASE
    assert held.dispatch_hold_since is not None
    assert before <= held.dispatch_hold_since.astimezone(UTC) <= datetime.now(UTC)


async def test_set_again_is_a_no_op(invoices, reference_data, activity_env):
    await activity_env.run(invoices.set_dispatch_hold, change(hold=True))
    first = await client(reference_data)

    await activity_env.run(invoices.set_dispatch_hold, change(hold=True, reason="retried"))
    await activity_env.run(
        invoices.set_dispatch_hold, change(hold=True, case_id=OTHER_CASE, reason="other invoice")
    )

    again = await client(reference_data)
    assert again.dispatch_hold is True
    assert again.dispatch_hold_reason == "invoice inv-1 unpaid"
    assert again.dispatch_hold_case_id == CASE
    assert again.dispatch_hold_since == first.dispatch_hold_since


async def test_only_the_case_that_set_the_hold_lifts_it(invoices, reference_data, activity_env):
    await activity_env.run(invoices.set_dispatch_hold, change(hold=True))

    await activity_env.run(
        invoices.set_dispatch_hold, change(hold=False, case_id=OTHER_CASE, reason="paid")
    )
    still = await client(reference_data)
    assert still.dispatch_hold is True and still.dispatch_hold_case_id == CASE

    await activity_env.run(invoices.set_dispatch_hold, change(hold=False, reason="paid"))
    lifted = await client(reference_data)
    assert lifted.dispatch_hold is False
    assert lifted.dispatch_hold_reason is None
    assert lifted.dispatch_hold_case_id is None
    assert lifted.dispatch_hold_since is None


async def test_lifting_without_a_hold_is_a_no_op(invoices, reference_data, activity_env):
    await activity_env.run(invoices.set_dispatch_hold, change(hold=False, reason="paid"))

    assert (await client(reference_data)).dispatch_hold is False


async def test_unknown_client_fails_without_retry(invoices, activity_env):
    unknown = change(hold=True).model_copy(update={"client_id": "nobody"})

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(invoices.set_dispatch_hold, unknown)

    assert failure.value.type == UNKNOWN_REFERENCE
    assert failure.value.non_retryable
    assert "nobody" in str(failure.value)


async def test_the_clients_depots_are_those_of_its_stops_shipments_and_cases(
    invoices, reference_data, activity_env
):
    request = ClientDepotsRequest(client_id=CLIENT_ID)
    assert (await activity_env.run(invoices.client_depots, request)).depot_ids == []

    async with reference_data() as session:
        session.add(
            Depot(
                id="mcr-1",
                name="Manchester",
                address="3 Depot Way",
                dispatcher_name="Mo Dispatch",
                dispatcher_email="dispatch.mcr@example.com",
            )
        )
        await session.flush()
        for n in range(2):  # two stops through one depot: named once
            session.add(
                DeliveryRecord(
                    shipment_id=f"R-{n}",
                    attempt_number=1,
                    client_id=CLIENT_ID,
                    depot_id="mcr-1",
                    attempted_at=datetime.now(UTC),
                    outcome=StopOutcome.DELIVERED,
                    source=RecordSource.ROUTING,
                )
            )
        for n in range(2):  # two shipments through one depot: named once
            session.add(
                Shipment(
                    id=f"SHP-{n}",
                    client_id=CLIENT_ID,
                    depot_id=OTHER_DEPOT_ID,
                    customer_name="C",
                    customer_email="c@example.com",
                )
            )
        session.add(
            Case(
                id="damage-claim-SHP-9",
                type=CaseType.DAMAGE_CLAIM,
                status=CaseStatus.OPEN,
                business_key="SHP-9",
                client_id=CLIENT_ID,
                depot_id=DEPOT_ID,
                subject="claim",
                opened_at=datetime.now(UTC),
            )
        )
        session.add(  # another client's case names no depot of this one
            Case(
                id="unpaid-invoice-x",
                type=CaseType.UNPAID_INVOICE,
                status=CaseStatus.OPEN,
                business_key="x",
                client_id="someone-else",
                depot_id="elsewhere",
                subject="invoice",
                opened_at=datetime.now(UTC),
            )
        )
        await session.commit()

    found = await activity_env.run(invoices.client_depots, request)

    assert found.depot_ids == sorted([DEPOT_ID, OTHER_DEPOT_ID, "mcr-1"])
