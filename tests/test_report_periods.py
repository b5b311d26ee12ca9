"""The period a report covers (`schemas.reporting`): labels parsed and refused, and the period a
scheduled run derives from its nominal time in the client's zone, exhaustively: every day and
every Monday of three years at every hour in nine zones, across clock changes and year ends;
and the schedules' spec and policy (`core.report_schedules`)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy

from core.report_schedules import CATCHUP_WINDOWS, ReportScheduleTerms, schedule_for
from schemas.reporting import (
    PeriodError,
    ReportingSettings,
    ReportKind,
    period_days,
    period_is_over,
    period_label,
    previous_label,
    report_id,
    schedule_id,
    scheduled_period,
)

DAILY, WEEKLY = ReportKind.DAILY, ReportKind.WEEKLY
ZONES = [
    "UTC",
    "Europe/London",
    "America/Los_Angeles",
    "America/New_York",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
    "Asia/Kathmandu",  # +05:45
]


def at(day: dt.date, hour: int, zone: str) -> dt.datetime:
    """`hour`:00 local on `day` (what the schedule fires at), as UTC."""
    return dt.datetime.combine(day, dt.time(hour), tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


@pytest.mark.parametrize("zone", ZONES)
def test_every_daily_run_of_three_years_reports_the_local_day_before(zone):
    day = dt.date(2026, 1, 1)
    while day.year < 2029:
        for hour in (0, 7, 23):
            nominal = at(day, hour, zone)
            assert (
                scheduled_period(DAILY, nominal, zone) == (day - dt.timedelta(days=1)).isoformat()
            )
        day += dt.timedelta(days=1)


@pytest.mark.parametrize("zone", ZONES)
def test_every_monday_run_of_three_years_reports_the_iso_week_before(zone):
    monday = dt.date(2026, 1, 5)
    while monday.year < 2029:
        for hour in (0, 7, 23):
            label = scheduled_period(WEEKLY, at(monday, hour, zone), zone)
            start, end = period_days(WEEKLY, label)
            assert (start, end) == (monday - dt.timedelta(days=7), monday - dt.timedelta(days=1))
        monday += dt.timedelta(days=7)


def test_the_clients_zone_not_utc_decides_the_day_and_the_week():
    """Monday 07:00 in Auckland is Sunday 18:00 UTC."""
    nominal = at(dt.date(2026, 11, 30), 7, "Pacific/Auckland")
    assert nominal == dt.datetime(2026, 11, 29, 18, 0, tzinfo=dt.UTC)
    assert scheduled_period(WEEKLY, nominal, "Pacific/Auckland") == "2026-W48"
    assert scheduled_period(WEEKLY, nominal, "UTC") == "2026-W47"
    assert scheduled_period(DAILY, nominal, "Pacific/Auckland") == "2026-11-29"
    assert scheduled_period(DAILY, nominal, "UTC") == "2026-11-28"


def test_runs_across_londons_clock_changes_report_whole_local_days():
    # 29 March 2026: clocks go forward at 01:00 UTC; 25 October: back at 01:00 UTC
    london = "Europe/London"
    assert scheduled_period(DAILY, at(dt.date(2026, 3, 30), 7, london), london) == "2026-03-29"
    midnight = at(dt.date(2026, 3, 30), 0, london)
    assert midnight == dt.datetime(2026, 3, 29, 23, 0, tzinfo=dt.UTC)  # still Sunday in UTC
    assert scheduled_period(DAILY, midnight, london) == "2026-03-29"
    assert scheduled_period(WEEKLY, at(dt.date(2026, 10, 26), 0, london), london) == "2026-W43"


def test_a_late_start_reports_the_period_of_its_nominal_time_not_of_the_clock():
    nominal = at(dt.date(2026, 12, 7), 7, "Europe/London")
    assert scheduled_period(WEEKLY, nominal, "Europe/London") == "2026-W49"
    assert scheduled_period(DAILY, nominal, "Europe/London") == "2026-12-06"


def test_a_naive_nominal_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        scheduled_period(DAILY, dt.datetime(2026, 11, 30, 7), "UTC")


@pytest.mark.parametrize(
    ("kind", "label", "days"),
    [
        (WEEKLY, "2026-W48", (dt.date(2026, 11, 23), dt.date(2026, 11, 29))),
        (WEEKLY, "2026-W53", (dt.date(2026, 12, 28), dt.date(2027, 1, 3))),
        (WEEKLY, "2027-W01", (dt.date(2027, 1, 4), dt.date(2027, 1, 10))),
        (DAILY, "2028-02-29", (dt.date(2028, 2, 29), dt.date(2028, 2, 29))),
    ],
)
def test_labels_name_their_days(kind, label, days):
    assert period_days(kind, label) == days
    assert period_label(kind, days[0]) == label


@pytest.mark.parametrize(
    ("kind", "label", "message"),
    [
        (WEEKLY, "2026-48", "not an ISO week"),
        (WEEKLY, "2027-W53", "2027 has no week 53"),
        (WEEKLY, "2026-W00", "has no week 0"),
        (WEEKLY, "2026-11-25", "not an ISO week"),
        (DAILY, "2026-W48", "not a date"),
        (DAILY, "2026-02-30", "not a real date"),
        (DAILY, "25/11/2026", "not a date"),
        (DAILY, "9999-12-31", "year is from 2000 to 2999"),
        (DAILY, "0001-01-01", "year is from 2000 to 2999"),
        (WEEKLY, "9999-W52", "year is from 2000 to 2999"),
    ],
)
def test_malformed_labels_are_refused_saying_what_is_expected(kind, label, message):
    with pytest.raises(PeriodError, match=message):
        period_days(kind, label)


def test_previous_periods_cross_year_ends():
    assert previous_label(WEEKLY, "2027-W01") == "2026-W53"
    assert previous_label(DAILY, "2027-01-01") == "2026-12-31"


def test_a_period_is_over_once_its_last_day_has_ended_in_the_clients_zone():
    # Monday 30 Nov 00:30 in Auckland is Sunday 11:30 UTC: W48 is over there, not in UTC
    now = dt.datetime(2026, 11, 29, 11, 30, tzinfo=dt.UTC)
    assert period_is_over(WEEKLY, "2026-W48", now, "Pacific/Auckland")
    assert not period_is_over(WEEKLY, "2026-W48", now, "UTC")
    assert not period_is_over(DAILY, "2026-11-29", now, "UTC")
    assert period_is_over(DAILY, "2026-11-28", now, "UTC")


def test_ids_carry_the_business_key_and_no_personal_data():
    assert report_id(WEEKLY, "acme", "2026-W48") == "report-weekly-acme-2026-W48"
    assert report_id(DAILY, "acme", "2026-11-25") == "report-daily-acme-2026-11-25"
    assert schedule_id(DAILY, "acme") == "reports-daily-acme"


def test_settings_default_to_nothing_and_refuse_a_bad_hour():
    settings = ReportingSettings()
    assert (settings.daily, settings.weekly, settings.hour, settings.contacts) == (
        False,
        False,
        7,
        [],
    )
    for hour in (-1, 24, "7", 7.5):
        with pytest.raises(ValueError, match="hour"):
            ReportingSettings.model_validate({"hour": hour})


# --- the schedules --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(ReportKind))
def test_a_schedule_catches_up_once_and_never_overlaps(kind):
    schedule = schedule_for(ReportScheduleTerms("acme", kind, "Europe/London", 6), "casedesk")

    cycle = dt.timedelta(days=1 if kind is DAILY else 7)
    assert schedule.policy.catchup_window == CATCHUP_WINDOWS[kind] < cycle
    assert schedule.policy.overlap is ScheduleOverlapPolicy.BUFFER_ONE
    assert schedule.spec.time_zone_name == "Europe/London"
    [calendar] = schedule.spec.calendars
    assert [r.start for r in calendar.hour] == [6]
    assert [r.start for r in calendar.minute] == [0]
    if kind is WEEKLY:
        assert [r.start for r in calendar.day_of_week] == [1]  # Monday
    assert isinstance(schedule.action, ScheduleActionStartWorkflow)
    assert schedule.action.id == f"report-scheduled-{kind.value}-acme"
    assert schedule.action.static_summary == f"{kind.value.capitalize()} report · client acme"
    assert "(times in Europe/London)" in str(schedule.action.static_details)
