"""Every figure of the client reports on hand-built data, with exact expected values
(`schemas.report_figures`): the formulas, the rounding, "no data" on empty periods, the
client's time zone at midnight and at the week boundary, a week across a clock change, the
four-week trend and the previous period, the daily exceptions and the rows behind them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas.enums import CaseStatus, CaseType, Resolution, StopOutcome
from schemas.report_figures import (
    ESCALATED,
    REASON_NOT_REPORTED,
    RETURNED,
    CaseEvent,
    CaseRow,
    Durations,
    PerThousand,
    Rate,
    ReportInputs,
    StopRow,
    build_report,
    compute_figures,
    daily_exceptions,
    median,
    nearest_rank,
    round_half_up,
    span_needed,
    trend_windows,
    underlying_rows,
    window,
)
from schemas.reporting import ReportKind

NY = "America/New_York"  # UTC-5 in November: local midnight is 05:00 UTC
LONDON = "Europe/London"
W48 = window(ReportKind.WEEKLY, "2026-W48")  # Mon 23 Nov .. Sun 29 Nov 2026
DELIVERED, FAILED = StopOutcome.DELIVERED, StopOutcome.FAILED


def local(day: dt.date, hour: int = 10, minute: int = 0, zone: str = NY, **kw: Any) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, **kw), tzinfo=ZoneInfo(zone))


def nov(day: int, hour: int = 10, minute: int = 0, **kw: Any) -> dt.datetime:
    return local(dt.date(2026, 11, day), hour, minute, **kw)


def stop(
    shipment: str,
    at: dt.datetime,
    outcome: StopOutcome = DELIVERED,
    attempt: int = 1,
    **kw: Any,
) -> StopRow:
    return StopRow(
        shipment_id=shipment, attempt_number=attempt, attempted_at=at, outcome=outcome, **kw
    )  # type: ignore[arg-type]


def case(case_id: str, case_type: CaseType, opened_at: dt.datetime, **kw: object) -> CaseRow:
    kw.setdefault("status", CaseStatus.OPEN)
    return CaseRow(case_id=case_id, case_type=case_type, opened_at=opened_at, **kw)  # type: ignore[arg-type]


def inputs(*, stops=(), cases=(), events=(), timezone: str = NY) -> ReportInputs:
    return ReportInputs(
        client_id="acme", timezone=timezone, stops=stops, cases=cases, events=events
    )


# --- the stops ----------------------------------------------------------------------------


WEEK_STOPS = [
    # eight first attempts: six delivered, two failed
    stop("S1", nov(23), promised_on=dt.date(2026, 11, 23)),  # on time (the promised day)
    stop("S2", nov(24), promised_on=dt.date(2026, 11, 25)),  # on time (early)
    stop("S3", nov(25), promised_on=dt.date(2026, 11, 24)),  # late
    stop("S4", nov(25)),  # no promise: not in the on-time rate
    stop("S5", nov(26)),
    stop("S6", nov(27)),
    stop("S7", nov(23), FAILED, reason="not_home"),
    stop("S8", nov(23), FAILED),  # the routing system gave no reason
    # second attempts: one delivered (a first attempt the week before), one failed
    stop("S0", nov(24), attempt=2),
    stop("S7", nov(26), FAILED, attempt=2, reason="not_home"),
]


def test_stops_first_attempt_success_on_time_and_failed_attempts_by_reason():
    figures = compute_figures(inputs(stops=WEEK_STOPS), W48)

    assert figures.stops_attempted == 10
    assert (figures.delivered, figures.failed_attempts, figures.first_attempts) == (7, 3, 8)
    # 6 first attempts delivered of 8: 75.0%
    assert figures.first_attempt_success == Rate(
        numerator=6, denominator=8, percent=Decimal("75.0")
    )
    # 2 of the 3 delivered stops with a promised day were on time: 66.666…% -> 66.7%
    assert figures.on_time == Rate(numerator=2, denominator=3, percent=Decimal("66.7"))
    assert figures.failed_by_reason == {"not_home": 2, REASON_NOT_REPORTED: 1}
    assert list(figures.failed_by_reason) == ["not_home", REASON_NOT_REPORTED]  # most first


def test_an_empty_period_is_no_data_never_a_division_error():
    figures = compute_figures(inputs(), W48)

    assert figures.stops_attempted == 0
    for rate in (
        figures.first_attempt_success,
        figures.on_time,
        figures.claims_filed_within_72h,
    ):
        assert (rate.numerator, rate.denominator, rate.percent, rate.text) == (
            0,
            0,
            None,
            "no data",
        )
    assert figures.claims_per_1000_stops == PerThousand(count=0, base=0, value=None)
    assert figures.claims_per_1000_stops.text == "no data"
    assert all(
        d == Durations(count=0, median_hours=None, p90_hours=None)
        for d in figures.time_to_resolve.values()
    )
    assert figures.failed_by_reason == {}
    assert (figures.invoices_overdue, figures.overdue_balance) == (0, [])


def test_claims_opened_with_no_stops_are_counted_but_their_rate_is_no_data():
    claim = case("damage-claim-X", CaseType.DAMAGE_CLAIM, nov(24))

    figures = compute_figures(inputs(cases=[claim]), W48)

    assert figures.claims_opened == 1
    assert figures.claims_per_1000_stops == PerThousand(count=1, base=0, value=None)


def test_a_stop_at_23_59_local_on_sunday_is_in_the_week_and_00_00_monday_is_in_the_next():
    last = stop("LAST", nov(29, 23, 59, second=59, microsecond=999_999))
    first_next = stop("NEXT", local(dt.date(2026, 11, 30), 0, 0))
    assert last.attempted_at.astimezone(dt.UTC) == dt.datetime(
        2026, 11, 30, 4, 59, 59, 999_999, tzinfo=dt.UTC
    )  # Monday in UTC, Sunday in New York

    data = inputs(stops=[last, first_next])

    assert compute_figures(data, W48).stops_attempted == 1
    assert compute_figures(data, window(ReportKind.WEEKLY, "2026-W49")).stops_attempted == 1
    # and the first instant of the week is in it: Monday 00:00 local
    monday = stop("MON", local(dt.date(2026, 11, 23), 0, 0))
    sunday_before = stop("SUN", nov(22, 23, 59))
    assert compute_figures(inputs(stops=[monday, sunday_before]), W48).stops_attempted == 1


def test_a_day_runs_from_local_midnight_to_midnight():
    day = window(ReportKind.DAILY, "2026-11-25")
    data = inputs(
        stops=[
            stop("A", nov(24, 23, 59)),
            stop("B", nov(25, 0, 0)),
            stop("C", nov(25, 23, 59)),
            stop("D", nov(26, 0, 0)),
        ]
    )

    figures = compute_figures(data, day)

    assert figures.stops_attempted == 2
    assert [r["id"] for r in underlying_rows(data, day)] == ["B", "C"]


def test_a_week_across_the_spring_clock_change_is_167_hours_of_local_days():
    """London springs forward on Sunday 29 March 2026 at 01:00 UTC."""
    week = window(ReportKind.WEEKLY, "2026-W13")
    lo, hi = week.bounds(LONDON)
    assert (lo, hi) == (
        dt.datetime(2026, 3, 23, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 23, 0, tzinfo=dt.UTC),  # Monday 00:00 BST
    )
    assert hi - lo == dt.timedelta(hours=167)
    data = inputs(
        timezone=LONDON,
        stops=[
            stop("IN-1", local(dt.date(2026, 3, 23), 0, 0, zone=LONDON)),
            stop("IN-2", local(dt.date(2026, 3, 29), 23, 59, zone=LONDON)),  # 22:59 UTC
            stop("OUT", local(dt.date(2026, 3, 30), 0, 0, zone=LONDON)),  # 29 Mar 23:00 UTC
        ],
    )

    assert compute_figures(data, week).stops_attempted == 2


def test_a_week_across_the_autumn_clock_change_is_169_hours():
    week = window(ReportKind.WEEKLY, "2026-W43")  # London falls back on Sunday 25 October
    lo, hi = week.bounds(LONDON)
    assert hi - lo == dt.timedelta(hours=169)
    late_sunday = stop("S", local(dt.date(2026, 10, 25), 23, 30, zone=LONDON))  # 23:30 UTC
    assert compute_figures(inputs(stops=[late_sunday], timezone=LONDON), week).stops_attempted == 1


def test_on_time_compares_the_local_date_with_the_promised_day():
    """Delivered at 23:30 on the promised day in New York is 04:30 UTC the day after: on
    time."""
    late_evening = stop("S", nov(25, 23, 30), promised_on=dt.date(2026, 11, 25))
    after_midnight = stop("T", nov(26, 0, 0), promised_on=dt.date(2026, 11, 25))

    figures = compute_figures(inputs(stops=[late_evening, after_midnight]), W48)

    assert figures.on_time == Rate(numerator=1, denominator=2, percent=Decimal("50.0"))


# --- the cases ----------------------------------------------------------------------------


def claim(case_id: str, opened: dt.datetime, **kw: object) -> CaseRow:
    return case(case_id, CaseType.DAMAGE_CLAIM, opened, **kw)


def test_claims_per_thousand_stops_within_72_hours_and_by_outcome():
    event = nov(20, 10)
    claims = [
        # filed exactly 72 h after the delivery event: within
        claim("c1", nov(21), delivery_event_at=event, filed_at=event + dt.timedelta(hours=72)),
        # filed 72 h and a microsecond after: not within
        claim(
            "c2",
            nov(23),
            delivery_event_at=event,
            filed_at=event + dt.timedelta(hours=72, microseconds=1),
        ),
        # opened in the week, filed within, paid in the week
        claim(
            "c3",
            nov(24),
            delivery_event_at=nov(24, 8),
            filed_at=nov(25),
            status=CaseStatus.CLOSED,
            resolution=Resolution.PAID,
            closed_at=nov(27),
        ),
        claim(
            "c4",
            nov(25),
            status=CaseStatus.CLOSED,
            resolution=Resolution.DENIED,
            closed_at=nov(28),
        ),
        claim(  # closed the week after: open at this week's end
            "c5",
            nov(26),
            status=CaseStatus.CLOSED,
            resolution=Resolution.WITHDRAWN,
            closed_at=local(dt.date(2026, 12, 1)),
        ),
        claim(
            "c6", nov(10), status=CaseStatus.CLOSED, resolution=Resolution.PAID, closed_at=nov(11)
        ),
    ]
    stops = [stop(f"S{i}", nov(23 + i % 7)) for i in range(7)]

    figures = compute_figures(inputs(stops=stops, cases=claims), W48)

    assert figures.claims_opened == 4  # c2..c5
    # 4 × 1000 / 7 = 571.428… -> 571.43
    assert figures.claims_per_1000_stops == PerThousand(count=4, base=7, value=Decimal("571.43"))
    # c1 (exactly 72 h: within), c2 (72 h and 1 µs: not), c3 (within) were filed in the week
    assert figures.claims_filed == 3
    assert figures.claims_filed_within_72h == Rate(
        numerator=2, denominator=3, percent=Decimal("66.7")
    )
    assert (figures.claims_paid, figures.claims_denied, figures.claims_withdrawn) == (1, 1, 0)
    assert figures.claims_open == 3  # c1, c2, c5


def test_time_to_resolve_median_and_p90_per_case_type():
    def failed(case_id: str, hours: float) -> CaseRow:
        opened = nov(23, 8)
        return case(
            case_id,
            CaseType.FAILED_DELIVERY,
            opened,
            status=CaseStatus.CLOSED,
            resolution=Resolution.DELIVERED,
            closed_at=opened + dt.timedelta(hours=hours),
        )

    cases = [
        failed("f1", 10),
        failed("f2", 20),
        failed("f3", 30),
        failed("f4", 40),
        # cancelled: closed, but not resolved
        case(
            "f5",
            CaseType.FAILED_DELIVERY,
            nov(23),
            status=CaseStatus.CANCELLED,
            resolution=Resolution.CANCELLED,
            closed_at=nov(24),
        ),
        # one unpaid invoice resolved in 1 h 20 min 30 s: 1.341666… h -> 1.3
        case(
            "u1",
            CaseType.UNPAID_INVOICE,
            nov(24, 9),
            status=CaseStatus.CLOSED,
            resolution=Resolution.PAID,
            closed_at=nov(24, 10, 20, second=30),
        ),
    ]

    resolved = compute_figures(inputs(cases=cases), W48).time_to_resolve

    # 10, 20, 30, 40 h: median (20 + 30) / 2 = 25.0; p90 is the ⌈3.6⌉ = 4th: 40.0
    assert resolved[CaseType.FAILED_DELIVERY] == Durations(
        count=4, median_hours=Decimal("25.0"), p90_hours=Decimal("40.0")
    )
    assert resolved[CaseType.UNPAID_INVOICE] == Durations(
        count=1, median_hours=Decimal("1.3"), p90_hours=Decimal("1.3")
    )
    assert resolved[CaseType.DAMAGE_CLAIM].count == 0


def test_escalations_and_returns_to_sender_are_counted_from_the_timeline():
    fd = case("failed-delivery-A", CaseType.FAILED_DELIVERY, nov(20))
    events = [
        CaseEvent("failed-delivery-A", nov(22), ESCALATED),  # the week before
        CaseEvent("failed-delivery-A", nov(23), ESCALATED),
        CaseEvent("damage-claim-B", nov(25), ESCALATED),
        CaseEvent("failed-delivery-A", nov(26), RETURNED),
    ]

    figures = compute_figures(inputs(cases=[fd], events=events), W48)

    assert (figures.escalations, figures.returns_to_sender) == (2, 1)


def test_invoices_overdue_at_the_periods_end_with_their_balance_then():
    def invoice(case_id: str, **kw: object) -> CaseRow:
        kw.setdefault("currency", "GBP")
        kw.setdefault("status", CaseStatus.AWAITING_PAYMENT)
        return case(case_id, CaseType.UNPAID_INVOICE, nov(1), **kw)

    cases = [
        # due before the end, 30.00 paid in the week, 70.00 after it: 70.00 overdue then
        invoice(
            "u1",
            amount=Decimal("100.00"),
            due_on=dt.date(2026, 11, 20),
            payments=(
                (dt.date(2026, 11, 25), Decimal("30.00")),
                (dt.date(2026, 12, 1), Decimal("70.00")),
            ),
            status=CaseStatus.CLOSED,
            resolution=Resolution.PAID,
            closed_at=local(dt.date(2026, 12, 1)),
        ),
        # due on the week's last day: overdue once that day is over
        invoice("u2", amount=Decimal("12.50"), due_on=dt.date(2026, 11, 29)),
        # due the day after: not yet
        invoice("u3", amount=Decimal("40.00"), due_on=dt.date(2026, 11, 30)),
        # paid in full by the end
        invoice(
            "u4",
            amount=Decimal("10.00"),
            due_on=dt.date(2026, 11, 2),
            payments=((dt.date(2026, 11, 3), Decimal("10.00")),),
        ),
        # another currency
        invoice("u5", amount=Decimal("1500"), currency="JPY", due_on=dt.date(2026, 11, 10)),
        # written off during the week: not open at its end
        invoice(
            "u6",
            amount=Decimal("5.00"),
            due_on=dt.date(2026, 11, 2),
            status=CaseStatus.CLOSED,
            resolution=Resolution.WRITTEN_OFF,
            closed_at=nov(24),
        ),
    ]

    figures = compute_figures(inputs(cases=cases), W48)

    assert figures.invoices_overdue == 3  # u1, u2, u5
    assert [(m.currency, m.amount) for m in figures.overdue_balance] == [
        ("GBP", Decimal("82.50")),
        ("JPY", Decimal("1500")),
    ]


# --- the report: previous period, trend, series -------------------------------------------


def test_the_report_has_the_previous_period_and_the_four_week_trend():
    stops = [
        stop("W45", local(dt.date(2026, 11, 3))),
        stop("W46-a", local(dt.date(2026, 11, 10))),
        stop("W46-b", local(dt.date(2026, 11, 11)), FAILED),
        stop("W47", local(dt.date(2026, 11, 17)), FAILED),
        *WEEK_STOPS,
    ]

    report = build_report(inputs(stops=stops), ReportKind.WEEKLY, "2026-W48")

    assert report.previous.period == "2026-W47"
    assert report.previous.first_attempt_success.percent == Decimal("0.0")
    assert [t.period for t in report.trend] == ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]
    assert [t.first_attempt_success.percent for t in report.trend] == [
        Decimal("100.0"),
        Decimal("50.0"),
        Decimal("0.0"),
        Decimal("75.0"),
    ]
    assert report.trend[-1] == report.figures
    assert len(report.series) == 12
    assert report.series[0].period == "2026-W37" and report.series[-1].period == "2026-W48"
    assert report.series[0].first_attempt_success.percent is None  # no stops: no data
    assert report.exceptions is None


def test_a_daily_report_trends_over_four_seven_day_windows_ending_that_day():
    windows = trend_windows(ReportKind.DAILY, "2026-11-25")
    assert [(w.start, w.end) for w in windows] == [
        (dt.date(2026, 10, 29), dt.date(2026, 11, 4)),
        (dt.date(2026, 11, 5), dt.date(2026, 11, 11)),
        (dt.date(2026, 11, 12), dt.date(2026, 11, 18)),
        (dt.date(2026, 11, 19), dt.date(2026, 11, 25)),
    ]
    assert windows[0].label == "2026-10-29/2026-11-04"
    report = build_report(inputs(stops=WEEK_STOPS), ReportKind.DAILY, "2026-11-25")
    assert report.previous.period == "2026-11-24"
    assert (report.figures.stops_attempted, report.previous.stops_attempted) == (2, 2)
    assert report.trend[-1].stops_attempted == 7  # 19..25 Nov: those of 23, 24 and 25 Nov
    assert report.series == []
    assert span_needed(ReportKind.DAILY, "2026-11-25") == (
        dt.date(2026, 10, 29),
        dt.date(2026, 11, 25),
    )
    assert span_needed(ReportKind.WEEKLY, "2026-W48") == (
        dt.date(2026, 9, 7),
        dt.date(2026, 11, 29),
    )


def test_the_week_before_the_first_iso_week_of_a_year_is_the_last_of_the_one_before():
    report = build_report(inputs(), ReportKind.WEEKLY, "2027-W01")
    assert report.previous.period == "2026-W53"  # 2026 has 53 ISO weeks
    assert (report.figures.start, report.figures.end) == (dt.date(2027, 1, 4), dt.date(2027, 1, 10))


# --- the daily exceptions -----------------------------------------------------------------


def test_the_daily_exceptions_list_each_case_with_its_console_link():
    day = window(ReportKind.DAILY, "2026-11-25")
    cases = [
        case("failed-delivery-S1", CaseType.FAILED_DELIVERY, nov(25, 9), business_key="S1"),
        case(
            "failed-delivery-S2",
            CaseType.FAILED_DELIVERY,
            nov(20),
            status=CaseStatus.CLOSED,
            resolution=Resolution.RETURNED_TO_SENDER,
            closed_at=nov(25, 12),
        ),
        case(
            "damage-claim-S3",
            CaseType.DAMAGE_CLAIM,
            nov(25, 23, 59),
            deadline_at=nov(28, 8),
        ),
        case("damage-claim-S4", CaseType.DAMAGE_CLAIM, nov(26, 0, 0)),  # the next day
        # escalated days ago and still open: listed
        case("unpaid-invoice-INV-1", CaseType.UNPAID_INVOICE, nov(1)),
        # escalated and closed the same day: not listed
        case(
            "failed-delivery-S5",
            CaseType.FAILED_DELIVERY,
            nov(24),
            status=CaseStatus.CLOSED,
            resolution=Resolution.DELIVERED,
            closed_at=nov(25, 15),
        ),
    ]
    events = [
        CaseEvent("failed-delivery-S2", nov(25, 11), RETURNED),
        CaseEvent("unpaid-invoice-INV-1", nov(20), ESCALATED),
        CaseEvent("failed-delivery-S5", nov(25, 10), ESCALATED),
        CaseEvent("damage-claim-S3", nov(25, 23, 59), ESCALATED),
    ]

    exceptions = daily_exceptions(inputs(cases=cases, events=events), day)

    assert [x.case_id for x in exceptions.failed_deliveries_opened] == ["failed-delivery-S1"]
    assert [(x.case_id, x.resolution) for x in exceptions.failed_deliveries_resolved] == [
        ("failed-delivery-S2", Resolution.RETURNED_TO_SENDER),
        ("failed-delivery-S5", Resolution.DELIVERED),
    ]
    assert [x.case_id for x in exceptions.returns_to_sender] == ["failed-delivery-S2"]
    [opened] = exceptions.claims_opened
    assert (opened.case_id, opened.deadline_at) == ("damage-claim-S3", nov(28, 8))
    assert opened.console_path == "/console/cases/damage-claim-S3"
    assert [x.case_id for x in exceptions.escalations_open] == [
        "damage-claim-S3",
        "unpaid-invoice-INV-1",
    ]
    assert not exceptions.empty
    assert daily_exceptions(inputs(), day).empty


def test_console_links_escape_the_case_id():
    row = case("unpaid-invoice-INV/1 x", CaseType.UNPAID_INVOICE, nov(25, 9))
    exceptions = daily_exceptions(
        inputs(cases=[row], events=[CaseEvent(row.case_id, nov(25, 10), ESCALATED)]),
        window(ReportKind.DAILY, "2026-11-25"),
    )
    assert (
        exceptions.escalations_open[0].console_path == "/console/cases/unpaid-invoice-INV%2F1%20x"
    )


# --- the rows behind the figures ----------------------------------------------------------


def test_the_rows_hold_every_stop_and_every_case_counted_with_exact_values():
    opened = nov(23, 8)
    cases = [
        case(
            "failed-delivery-S7",
            CaseType.FAILED_DELIVERY,
            opened,
            status=CaseStatus.CLOSED,
            resolution=Resolution.DELIVERED,
            closed_at=opened + dt.timedelta(hours=1, seconds=1),
        ),
        case("failed-delivery-OLD", CaseType.FAILED_DELIVERY, nov(1)),  # counts nothing
    ]
    data = inputs(stops=WEEK_STOPS, cases=cases)

    rows = underlying_rows(data, W48)

    stops = [r for r in rows if r["row"] == "stop"]
    assert len(stops) == compute_figures(data, W48).stops_attempted == 10
    s3 = next(r for r in stops if r["id"] == "S3")
    assert (s3["at_utc"], s3["local_date"], s3["promised_on"], s3["on_time"]) == (
        "2026-11-25T15:00:00Z",
        "2026-11-25",
        "2026-11-24",
        "false",
    )
    s8 = next(r for r in stops if r["id"] == "S8")
    assert (s8["outcome"], s8["reason"], s8["on_time"]) == ("failed", REASON_NOT_REPORTED, "")
    [resolved] = [r for r in rows if r["row"] == "case"]
    assert resolved["id"] == "failed-delivery-S7"
    # 3601 s = 1.000277… h, to the digit: never rounded in the CSV
    assert resolved["hours_to_resolve"] == "1.000277777777777777777777778"


# --- exact arithmetic ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (Fraction(1, 8), 2, "0.13"),  # 0.125: half up
        (Fraction(1, 3), 1, "0.3"),
        (Fraction(2, 3), 1, "0.7"),
        (Fraction(200, 3), 1, "66.7"),
        (Fraction(5, 1000), 2, "0.01"),
        (Fraction(-1, 8), 2, "-0.13"),
        (Fraction(0), 1, "0.0"),
        (Fraction(99995, 1000), 1, "100.0"),
    ],
)
def test_rounding_is_half_up_and_exact(value, places, expected):
    assert str(round_half_up(value, places)) == expected


def test_median_and_nearest_rank():
    values = [Fraction(v) for v in range(1, 11)]  # 1..10
    assert median(values) == Fraction(11, 2)
    assert median(values[:9]) == 5
    assert nearest_rank(values, 90) == 9  # ⌈9.0⌉
    assert nearest_rank([Fraction(v) for v in range(1, 12)], 90) == 10  # ⌈9.9⌉
    assert nearest_rank([Fraction(7)], 90) == 7
