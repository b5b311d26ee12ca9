"""The redelivery plan for a customer's choice: which day, by when, and the sentence that says
so. Pure functions (no database), in the depot's local time.

The summary goes into the case index, the timeline, emails and Temporal history (encrypted), so
it never names a third party: no neighbour's name or address and no street address (a pickup
point is a business and is named). It ends with the customer's own instructions for the driver
("Please ring twice"), which the depot and ops must see with the booking. The full choice stays
in `shipments.redelivery_plan` for ops."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio import activity

from schemas.cases import RedeliveryBooked, RedeliveryChoice
from schemas.enums import RedeliveryOption
from schemas.tables import PickupPoint

END_OF_ROUTE_DAY = time(21, 0)  # the evening window closes the route day


@dataclass(frozen=True)
class RedeliveryPlan:
    choice: RedeliveryChoice
    booked: RedeliveryBooked
    pickup_point: PickupPoint | None = None

    def as_json(self) -> dict[str, Any]:
        """What `shipments.redelivery_plan` stores."""
        plan: dict[str, Any] = {
            "option": self.choice.option.value,
            "choice": self.choice.model_dump(mode="json"),
            "summary": self.booked.summary,
            "delivery_date": self.booked.delivery_date.isoformat(),
            "expected_by": self.booked.expected_by.isoformat(),
        }
        if self.pickup_point is not None:
            plan["pickup_point"] = {
                "id": self.pickup_point.id,
                "name": self.pickup_point.name,
                "address": self.pickup_point.address,
                "opening_hours": self.pickup_point.opening_hours,
            }
        return plan


def depot_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # A typo in reference data should not block the customer's booking; UTC is a day off
        # at worst, and the warning tells ops to fix the depot.
        activity.logger.warning("depot timezone %r unknown; planning in UTC", name)
        return ZoneInfo("UTC")


def next_route_day(decided_at: datetime, zone: ZoneInfo) -> date:
    """The first route day after the decision, in the depot's time zone. Depots run routes
    every day (there is no route calendar in the reference data yet)."""
    aware = decided_at if decided_at.tzinfo else decided_at.replace(tzinfo=UTC)
    return aware.astimezone(zone).date() + timedelta(days=1)


def day_label(day: date) -> str:
    """`Tue 24 Nov`."""
    return f"{day:%a} {day.day} {day:%b}"


def plan_redelivery(
    choice: RedeliveryChoice,
    *,
    decided_at: datetime,
    timezone: str,
    pickup_point: PickupPoint | None = None,
) -> RedeliveryPlan:
    zone = depot_zone(timezone)
    if choice.option is RedeliveryOption.REDELIVERY_WINDOW:
        assert choice.date is not None and choice.window is not None  # validated by the model
        day = choice.date
        start, end = choice.window.hours
        summary = f"Redelivery on {day_label(day)}, {start:02d}:00-{end:02d}:00"
        ends = time(end, 0)
    else:
        day = next_route_day(decided_at, zone)
        ends = END_OF_ROUTE_DAY
        if choice.option is RedeliveryOption.PICKUP_POINT:
            assert pickup_point is not None
            summary = (
                f"At pickup point {pickup_point.name}, {pickup_point.address}, "
                f"from {day_label(day)}"
            )
        elif choice.option is RedeliveryOption.NEIGHBOUR:
            summary = f"With a neighbour, from {day_label(day)}"
        else:
            summary = f"To the corrected address, on {day_label(day)}"
    if choice.instructions:
        summary = f"{summary}; for the driver: “{choice.instructions}”"
    expected_by = datetime.combine(day, ends, tzinfo=zone).astimezone(UTC)
    starts = datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)
    booked = RedeliveryBooked(
        summary=summary, delivery_date=day, expected_by=expected_by, route_day_starts_at=starts
    )
    return RedeliveryPlan(choice=choice, booked=booked, pickup_point=pickup_point)
