"""schedule_redelivery: one plan per option, in the depot's local time."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from temporalio.exceptions import ApplicationError

from activities.errors import UNKNOWN_REFERENCE
from activities.records import RecordActivities
from core.db import SessionFactory
from schemas.activities import RedeliveryBooking
from schemas.cases import Address, RedeliveryChoice
from schemas.enums import RedeliveryOption, ShipmentStatus, TimeWindow
from schemas.tables import Shipment
from tests.activities.conftest import DEPOT_ID, OTHER_DEPOT_ID
from tests.activities.test_records import CASE_ID, attempt_record

# Monday 23 Nov 2026, 10:00 in London (GMT, so also 10:00 UTC).
DECIDED_AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
async def records(reference_data: SessionFactory, activity_env) -> RecordActivities:
    records = RecordActivities(reference_data)
    await activity_env.run(records.record_failed_attempt, attempt_record())
    return records


def booking(
    option: RedeliveryOption,
    *,
    depot_id: str = DEPOT_ID,
    decided_at: datetime = DECIDED_AT,
    shipment_id: str = "SHP-1",
    **fields,
) -> RedeliveryBooking:
    choice = RedeliveryChoice(option=option, attempt_number=1, **fields)
    return RedeliveryBooking(
        case_id=CASE_ID,
        shipment_id=shipment_id,
        depot_id=depot_id,
        choice=choice,
        decided_at=decided_at,
    )


async def shipment(sessions: SessionFactory) -> Shipment:
    async with sessions() as session:
        found = await session.get(Shipment, "SHP-1")
        assert found is not None
        return found


async def test_window_redelivery_is_booked_on_the_chosen_day_and_window(
    records, reference_data, activity_env
):
    request = booking(
        RedeliveryOption.REDELIVERY_WINDOW, date=date(2026, 11, 25), window=TimeWindow.MORNING
    )

    booked = await activity_env.run(records.schedule_redelivery, request)

    stored = await shipment(reference_data)
    assert booked.summary == "Redelivery on Wed 25 Nov, 08:00-12:00"
    assert booked.delivery_date == date(2026, 11, 25)
    assert booked.expected_by == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert (stored.status, stored.redelivery_date) == (
        ShipmentStatus.REDELIVERY_SCHEDULED,
        date(2026, 11, 25),
    )
    assert stored.redelivery_plan["summary"] == booked.summary
    assert stored.redelivery_plan["choice"]["window"] == "morning"


async def test_pickup_point_booking_is_ready_the_next_day(records, reference_data, activity_env):
    request = booking(RedeliveryOption.PICKUP_POINT, pickup_point_id="pp-corner")

    booked = await activity_env.run(records.schedule_redelivery, request)

    assert booked.summary == "At pickup point Corner Shop, 12 High St, from Tue 24 Nov"
    assert booked.delivery_date == date(2026, 11, 24)
    assert booked.expected_by == datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
    assert (await shipment(reference_data)).redelivery_plan["pickup_point"]["id"] == "pp-corner"


@pytest.mark.parametrize("pickup_point_id", ["pp-nyc", "pp-missing"])
async def test_pickup_point_not_at_the_depot_fails_without_retry(
    records, reference_data, activity_env, pickup_point_id
):
    request = booking(RedeliveryOption.PICKUP_POINT, pickup_point_id=pickup_point_id)

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(records.schedule_redelivery, request)

    assert failure.value.type == UNKNOWN_REFERENCE
    assert failure.value.non_retryable
    assert (await shipment(reference_data)).status is ShipmentStatus.ATTEMPT_FAILED


async def test_neighbour_drop_is_on_the_next_route_day(records, reference_data, activity_env):
    request = booking(
        RedeliveryOption.NEIGHBOUR, neighbour_name="Bob Next-Door", neighbour_address="3 Main St"
    )

    booked = await activity_env.run(records.schedule_redelivery, request)

    # The summary goes to the case index, the timeline and Temporal history: no third party.
    stored = await shipment(reference_data)
    assert booked.summary == "With a neighbour, from Tue 24 Nov"
    assert "Bob" not in booked.summary and "Main St" not in booked.summary
    assert booked.delivery_date == date(2026, 11, 24)
    assert stored.status is ShipmentStatus.REDELIVERY_SCHEDULED
    assert stored.redelivery_plan["summary"] == booked.summary
    # Ops still see who and where, on the shipment.
    assert stored.redelivery_plan["choice"]["neighbour_name"] == "Bob Next-Door"
    assert stored.redelivery_plan["choice"]["neighbour_address"] == "3 Main St"


async def test_address_correction_replaces_the_shipment_address(
    records, reference_data, activity_env
):
    corrected = Address(line1="9 New Rd", city="London", postal_code="E2 2BB", country="GB")

    booked = await activity_env.run(
        records.schedule_redelivery, booking(RedeliveryOption.ADDRESS_CORRECTION, address=corrected)
    )

    stored = await shipment(reference_data)
    assert booked.summary == "To the corrected address, on Tue 24 Nov"
    assert "9 New Rd" not in booked.summary and "E2 2BB" not in booked.summary
    assert stored.address == corrected.model_dump(mode="json")
    assert stored.redelivery_plan["choice"]["address"]["line1"] == "9 New Rd"


async def test_next_route_day_is_counted_in_the_depot_timezone(records, activity_env):
    # 03:00 UTC on Tuesday is still Monday evening in New York.
    decided_at = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    request = booking(
        RedeliveryOption.NEIGHBOUR,
        depot_id=OTHER_DEPOT_ID,
        decided_at=decided_at,
        neighbour_name="Bob",
        neighbour_address="3 Main St",
    )

    booked = await activity_env.run(records.schedule_redelivery, request)

    assert booked.delivery_date == date(2026, 11, 24)
    assert booked.expected_by == datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 21:00 EST


async def test_redelivery_of_an_unknown_shipment_fails_without_retry(records, activity_env):
    request = booking(
        RedeliveryOption.NEIGHBOUR,
        shipment_id="nope",
        neighbour_name="Bob",
        neighbour_address="3 Main St",
    )

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(records.schedule_redelivery, request)

    assert failure.value.type == UNKNOWN_REFERENCE
    assert failure.value.non_retryable


async def test_the_customers_instructions_for_the_driver_are_on_the_booking(
    records, reference_data, activity_env
):
    request = booking(
        RedeliveryOption.REDELIVERY_WINDOW,
        date=date(2026, 11, 25),
        window=TimeWindow.MORNING,
        instructions="Please ring twice",
    )

    booked = await activity_env.run(records.schedule_redelivery, request)

    assert booked.summary == (
        "Redelivery on Wed 25 Nov, 08:00-12:00; for the driver: “Please ring twice”"
    )
    assert (await shipment(reference_data)).redelivery_plan["summary"] == booked.summary
