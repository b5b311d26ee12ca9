"""The period a scheduled run bills, from its nominal time (`schemas.invoicing.cycle_period`):
the week or month before, in the client's time zone, whatever UTC says, across clock changes
and month ends; and the schedule's spec and policy (`core.invoicing_schedules`)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy

from core.invoicing_schedules import CATCHUP_WINDOWS, ScheduleTerms, cycle_of, schedule_for
from schemas.enums import BillingCycle
from schemas.invoicing import cycle_period, invoice_number, number_problem

ZONES = [
    "UTC",
    "Europe/London",
    "America/Los_Angeles",
    "America/New_York",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
    "Asia/Kolkata",  # a half-hour offset
]
WEEKLY, MONTHLY = BillingCycle.WEEKLY, BillingCycle.MONTHLY


def at_two(day: dt.date, zone: str) -> dt.datetime:
    """02:00 local on `day` (what the schedule fires at), as UTC."""
    return dt.datetime.combine(day, dt.time(2), tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


@pytest.mark.parametrize("zone", ZONES)
def test_every_monday_of_three_years_bills_the_monday_to_sunday_before(zone):
    monday = dt.date(2026, 1, 5)
    while monday.year < 2029:
        start, end = cycle_period(WEEKLY, at_two(monday, zone), zone)
        assert (start.weekday(), end.weekday()) == (0, 6)
        assert (start, end) == (monday - dt.timedelta(days=7), monday - dt.timedelta(days=1))
        monday += dt.timedelta(days=7)


@pytest.mark.parametrize("zone", ZONES)
def test_every_first_of_the_month_bills_the_calendar_month_before(zone):
    for year in (2026, 2027, 2028):
        for month in range(1, 13):
            first = dt.date(year, month, 1)
            start, end = cycle_period(MONTHLY, at_two(first, zone), zone)
            assert start.day == 1 and end == first - dt.timedelta(days=1)
            assert (start.year, start.month) == (end.year, end.month)


def test_a_week_across_the_clock_change_is_still_monday_to_sunday():
    # London springs forward on Sunday 29 March 2026 and falls back on 25 October 2026.
    spring = at_two(dt.date(2026, 3, 30), "Europe/London")
    autumn = at_two(dt.date(2026, 10, 26), "Europe/London")
    assert spring == dt.datetime(2026, 3, 30, 1, 0, tzinfo=dt.UTC)  # 02:00 BST
    assert autumn == dt.datetime(2026, 10, 26, 2, 0, tzinfo=dt.UTC)  # 02:00 GMT
    assert cycle_period(WEEKLY, spring, "Europe/London") == (
        dt.date(2026, 3, 23),
        dt.date(2026, 3, 29),
    )
    assert cycle_period(WEEKLY, autumn, "Europe/London") == (
        dt.date(2026, 10, 19),
        dt.date(2026, 10, 25),
    )


def test_the_clients_zone_not_utc_decides_the_week():
    """Monday 02:00 in Auckland is Sunday 13:00 UTC: by UTC that would be the week before."""
    nominal = at_two(dt.date(2026, 11, 23), "Pacific/Auckland")
    assert nominal == dt.datetime(2026, 11, 22, 13, 0, tzinfo=dt.UTC)
    assert cycle_period(WEEKLY, nominal, "Pacific/Auckland") == (
        dt.date(2026, 11, 16),
        dt.date(2026, 11, 22),
    )
    assert cycle_period(WEEKLY, nominal, "UTC") == (dt.date(2026, 11, 9), dt.date(2026, 11, 15))


def test_month_ends_leap_years_and_the_new_year():
    assert cycle_period(MONTHLY, at_two(dt.date(2028, 3, 1), "UTC"), "UTC") == (
        dt.date(2028, 2, 1),
        dt.date(2028, 2, 29),
    )
    assert cycle_period(MONTHLY, at_two(dt.date(2027, 3, 1), "UTC"), "UTC") == (
        dt.date(2027, 2, 1),
        dt.date(2027, 2, 28),
    )
    assert cycle_period(
        MONTHLY, at_two(dt.date(2027, 1, 1), "America/Los_Angeles"), "America/Los_Angeles"
    ) == (
        dt.date(2026, 12, 1),
        dt.date(2026, 12, 31),
    )


def test_a_late_start_bills_the_period_of_its_nominal_time():
    """Caught up days later (after an outage) the run still bills its own period: only the
    nominal time counts."""
    nominal = at_two(dt.date(2026, 12, 1), "Europe/London")
    assert cycle_period(MONTHLY, nominal, "Europe/London") == (
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 30),
    )


def test_a_naive_nominal_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        cycle_period(WEEKLY, dt.datetime(2026, 11, 23, 2), "UTC")


# --- the schedule ---------------------------------------------------------------------------


@pytest.mark.parametrize("cycle", list(BillingCycle))
def test_the_schedule_catches_up_once_and_never_overlaps(cycle):
    schedule = schedule_for(ScheduleTerms("demo-shop", cycle, "Europe/London"), "casedesk")

    cycle_length = dt.timedelta(days=7 if cycle is WEEKLY else 28)  # the shortest month
    assert schedule.policy.catchup_window == CATCHUP_WINDOWS[cycle] < cycle_length
    assert schedule.policy.overlap is ScheduleOverlapPolicy.BUFFER_ONE
    assert schedule.policy.pause_on_failure
    assert schedule.spec.time_zone_name == "Europe/London"
    assert cycle_of(schedule.spec) is cycle
    [calendar] = schedule.spec.calendars
    assert [(r.start) for r in calendar.hour] == [2]
    assert isinstance(schedule.action, ScheduleActionStartWorkflow)
    assert schedule.action.id == "invoicing-run-demo-shop"  # Temporal appends the nominal time
    assert schedule.action.static_summary == f"Invoicing run · client demo-shop · {cycle}"
    assert "(times in Europe/London)" in str(schedule.action.static_details)


def test_invoice_numbers_fit_the_unpaid_invoice_case_id():
    assert invoice_number("demo-shop", 42) == "INV-DEMO-SHOP-000042"
    assert invoice_number("demo-shop", 1_234_567) == "INV-DEMO-SHOP-1234567"
    assert number_problem("x" * 53) is None
    assert number_problem("x" * 54) is not None
