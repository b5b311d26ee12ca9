"""The dispatch hold activity of the unpaid-invoice case, on SQLite and PostgreSQL: setting
it records the reason, the case and the moment; setting it again changes nothing; only the
case that set it can lift it; an unknown client fails without retry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ApplicationError

from activities.invoices import InvoiceActivities
from activities.records import UNKNOWN_REFERENCE
from core.db import SessionFactory
from schemas.invoices import DispatchHoldChange
from schemas.tables import Client
from tests.activities.conftest import CLIENT_ID

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
