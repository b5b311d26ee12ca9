"""Every figure of a client's reports, computed from plain inputs: pure (no I/O, no clock),
exact (`Fraction` arithmetic, rounded once at the end, half-up), and the one place both the
emails and `GET /reports/{client_id}` get their numbers from.

A period is a run of whole local days in the client's time zone; a row is in it when its
instant falls in [first day 00:00, day after the last 00:00) local time (`period_bounds`: the
bounds move with the clock changes, so a week across one is 167 or 169 hours long). The
formulas (also in the README, "Client reporting"):

- **stops attempted** = delivery records attempted in the period (delivered or failed).
- **first-attempt success** = first attempts delivered / first attempts, a shipment being
  counted in the period of its attempt 1 (`attempt_number == 1`).
- **on-time** = delivered stops whose local date is on or before the record's `promised_on`
  / delivered stops that carry a `promised_on`.
- **failed attempts by reason** = failed records by their `reason` (`reason not reported`
  where the record has none: the routing system does not send one, only a failed-delivery
  case records it).
- **returns to sender** = failed-delivery cases that turned to `returning_to_sender` in the
  period (their timeline's status event).
- **claims per 1,000 stops** = damage / loss claims opened in the period × 1000 / stops
  attempted.
- **claims filed within 72 h** = claims filed in the period whose filing came at most 72 hours
  after the delivery event / claims filed in the period.
- **claims paid, denied, withdrawn** = claims closed in the period with that resolution;
  **claims open** = claims opened before the period's end and not closed by then.
- **time to resolve** per case type = closed_at − opened_at of the cases of that type closed
  (status `closed`) in the period: the median (the middle value, or the mean of the two
  middle ones) and the 90th percentile (nearest rank: the ⌈0.9·n⌉-th smallest), in hours.
- **escalations** = escalation events of the client's cases in the period.
- **invoices overdue** = unpaid-invoice cases open at the period's end whose due date is on or
  before its last day and whose balance then, the amount less the payments made by that day,
  is above zero; their **balance** is that sum, per currency.

Rounding, once, half-up: rates to 0.1 of a percent, claims per 1,000 stops to 0.01, hours to
0.1. A rate or ratio whose denominator is zero, and a duration figure without a case, is
**no data** (`None`), never a division error nor a zero.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from schemas.enums import CaseStatus, CaseType, Resolution, StopOutcome
from schemas.pricing import period_bounds
from schemas.reporting import ReportKind, period_days, period_label

REASON_NOT_REPORTED = "reason not reported"
CLAIM_FILING_WINDOW = dt.timedelta(hours=72)
TREND_WEEKS = 4
SERIES_WEEKS = 12
RESOLVED_TYPES = (CaseType.FAILED_DELIVERY, CaseType.DAMAGE_CLAIM, CaseType.UNPAID_INVOICE)
ESCALATED = "escalated"
RETURNED = "returned_to_sender"


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StopRow:
    """A delivery record."""

    shipment_id: str
    attempt_number: int
    attempted_at: dt.datetime
    outcome: StopOutcome
    reason: str | None = None
    promised_on: dt.date | None = None
    depot_id: str = ""


@dataclass(frozen=True, slots=True)
class CaseRow:
    """A case of the client as the case index holds it, with what its details say that the
    figures need (claims: the delivery event and the filing; invoices: the money)."""

    case_id: str
    case_type: CaseType
    status: CaseStatus
    opened_at: dt.datetime
    closed_at: dt.datetime | None = None
    resolution: Resolution | None = None
    business_key: str = ""
    deadline_at: dt.datetime | None = None
    delivery_event_at: dt.datetime | None = None
    filed_at: dt.datetime | None = None
    currency: str | None = None
    amount: Decimal | None = None
    due_on: dt.date | None = None
    payments: tuple[tuple[dt.date, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """A timeline event that counts: an escalation, or a turn to returning to sender."""

    case_id: str
    at: dt.datetime
    kind: str


@dataclass(frozen=True)
class ReportInputs:
    client_id: str
    timezone: str
    stops: Sequence[StopRow] = ()
    cases: Sequence[CaseRow] = ()
    events: Sequence[CaseEvent] = ()


# --- exact numbers ---------------------------------------------------------------------------


def round_half_up(value: Fraction, places: int) -> Decimal:
    """`value` to `places` decimals, halves away from zero, exactly (no float, no inexact
    Decimal division)."""
    scale = 10**places
    scaled = abs(value) * scale
    rounded = (scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2)
    return Decimal(-rounded if value < 0 else rounded).scaleb(-places)


class Rate(BaseModel):
    """numerator / denominator as a percentage (0.1, half-up); `percent` is None (no data)
    when the denominator is zero."""

    numerator: int
    denominator: int
    percent: Decimal | None

    @classmethod
    def of(cls, numerator: int, denominator: int) -> Rate:
        percent = round_half_up(Fraction(numerator * 100, denominator), 1) if denominator else None
        return cls(numerator=numerator, denominator=denominator, percent=percent)

    @property
    def text(self) -> str:
        return "no data" if self.percent is None else f"{self.percent}%"


class PerThousand(BaseModel):
    """count × 1000 / base (0.01, half-up); `value` None (no data) when the base is zero."""

    count: int
    base: int
    value: Decimal | None

    @classmethod
    def of(cls, count: int, base: int) -> PerThousand:
        value = round_half_up(Fraction(count * 1000, base), 2) if base else None
        return cls(count=count, base=base, value=value)

    @property
    def text(self) -> str:
        return "no data" if self.value is None else str(self.value)


def _micros(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def median(values: Sequence[Fraction]) -> Fraction:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def nearest_rank(values: Sequence[Fraction], percent: int) -> Fraction:
    """The ⌈percent/100 · n⌉-th smallest value (1-based)."""
    ordered = sorted(values)
    rank = -(-percent * len(ordered) // 100)
    return ordered[max(rank, 1) - 1]


class Durations(BaseModel):
    """Times to resolve, in hours (0.1, half-up); None (no data) without a case."""

    count: int
    median_hours: Decimal | None
    p90_hours: Decimal | None

    @classmethod
    def of(cls, spans: Sequence[dt.timedelta]) -> Durations:
        if not spans:
            return cls(count=0, median_hours=None, p90_hours=None)
        hours = [Fraction(_micros(span), 3_600_000_000) for span in spans]
        return cls(
            count=len(hours),
            median_hours=round_half_up(median(hours), 1),
            p90_hours=round_half_up(nearest_rank(hours, 90), 1),
        )


class Money(BaseModel):
    currency: str
    amount: Decimal


# --- periods ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Whole local days, first to last (included)."""

    label: str
    start: dt.date
    end: dt.date

    def bounds(self, timezone: str) -> tuple[dt.datetime, dt.datetime]:
        return period_bounds(self.start, self.end, timezone)


def window(kind: ReportKind, label: str) -> Window:
    start, end = period_days(kind, label)
    return Window(label, start, end)


def seven_day_windows(end: dt.date, count: int) -> list[Window]:
    """`count` consecutive 7-day windows, oldest first, the last ending on `end` (ISO weeks
    when `end` is a Sunday)."""
    windows = []
    for back in range(count - 1, -1, -1):
        last = end - dt.timedelta(days=7 * back)
        first = last - dt.timedelta(days=6)
        label = (
            period_label(ReportKind.WEEKLY, first)
            if first.weekday() == 0
            else f"{first.isoformat()}/{last.isoformat()}"
        )
        windows.append(Window(label, first, last))
    return windows


def trend_windows(kind: ReportKind, label: str) -> list[Window]:
    """The four-week trend: four 7-day windows ending on the period's last day (for a weekly
    report, its week and the three before)."""
    return seven_day_windows(window(kind, label).end, TREND_WEEKS)


def series_windows(kind: ReportKind, label: str) -> list[Window]:
    """The 12 weeks of the trend chart (weekly reports)."""
    return seven_day_windows(window(kind, label).end, SERIES_WEEKS)


def span_needed(kind: ReportKind, label: str) -> tuple[dt.date, dt.date]:
    """The local days a report reads: the 12 weeks of its chart (weekly) or its four-week
    trend (daily), which cover the previous period too."""
    windows = (
        series_windows(kind, label) if kind is ReportKind.WEEKLY else trend_windows(kind, label)
    )
    return windows[0].start, windows[-1].end


# --- figures ---------------------------------------------------------------------------------


class Figures(BaseModel):
    """Every figure of one period."""

    period: str
    start: dt.date
    end: dt.date
    stops_attempted: int
    delivered: int
    failed_attempts: int
    first_attempts: int
    first_attempt_success: Rate
    on_time: Rate
    failed_by_reason: dict[str, int] = Field(
        description="Most frequent first; `reason not reported` where the record has none."
    )
    returns_to_sender: int
    claims_opened: int
    claims_per_1000_stops: PerThousand
    claims_filed: int
    claims_filed_within_72h: Rate
    claims_paid: int
    claims_denied: int
    claims_withdrawn: int
    claims_open: int = Field(description="Open at the period's end.")
    time_to_resolve: dict[CaseType, Durations]
    escalations: int
    invoices_overdue: int
    overdue_balance: list[Money] = Field(description="Per currency, at the period's end.")


@dataclass
class _Sorted:
    """The inputs, each kind sorted by its instant: a window takes its slice by bisection."""

    inputs: ReportInputs
    stops: list[StopRow] = field(default_factory=list)
    stop_times: list[dt.datetime] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stops = sorted(self.inputs.stops, key=lambda s: s.attempted_at)
        self.stop_times = [s.attempted_at for s in self.stops]

    def stops_in(self, lo: dt.datetime, hi: dt.datetime) -> list[StopRow]:
        return self.stops[bisect_left(self.stop_times, lo) : bisect_left(self.stop_times, hi)]


def _within(at: dt.datetime | None, lo: dt.datetime, hi: dt.datetime) -> bool:
    return at is not None and lo <= at < hi


def _open_at(case: CaseRow, instant: dt.datetime) -> bool:
    return case.opened_at < instant and (case.closed_at is None or case.closed_at >= instant)


def on_time(stop: StopRow, timezone: str) -> bool | None:
    """Delivered by the promised day (None: not a delivered stop with a promise)."""
    if stop.outcome is not StopOutcome.DELIVERED or stop.promised_on is None:
        return None
    return stop.attempted_at.astimezone(ZoneInfo(timezone)).date() <= stop.promised_on


def filed_in_time(case: CaseRow) -> bool | None:
    if case.filed_at is None or case.delivery_event_at is None:
        return None
    return case.filed_at - case.delivery_event_at <= CLAIM_FILING_WINDOW


def balance_at(case: CaseRow, day: dt.date) -> Decimal:
    """The invoice's balance at the end of `day`: the amount less the payments made by then."""
    paid = sum((amount for paid_on, amount in case.payments if paid_on <= day), Decimal(0))
    return max(Decimal(0), (case.amount or Decimal(0)) - paid)


def overdue_at(case: CaseRow, end: dt.date, hi: dt.datetime) -> bool:
    return (
        case.case_type is CaseType.UNPAID_INVOICE
        and _open_at(case, hi)
        and case.due_on is not None
        and case.due_on <= end
        and balance_at(case, end) > 0
    )


def _figures(data: _Sorted, period: Window) -> Figures:
    inputs = data.inputs
    tz = inputs.timezone
    lo, hi = period.bounds(tz)
    stops = data.stops_in(lo, hi)
    delivered = [s for s in stops if s.outcome is StopOutcome.DELIVERED]
    failed = [s for s in stops if s.outcome is StopOutcome.FAILED]
    first = [s for s in stops if s.attempt_number == 1]
    promised = [flag for s in delivered if (flag := on_time(s, tz)) is not None]
    reasons = Counter(s.reason or REASON_NOT_REPORTED for s in failed)

    claims = [c for c in inputs.cases if c.case_type is CaseType.DAMAGE_CLAIM]
    opened = [c for c in claims if _within(c.opened_at, lo, hi)]
    filed = [c for c in claims if _within(c.filed_at, lo, hi)]
    closed_claims = Counter(
        c.resolution
        for c in claims
        if c.status is CaseStatus.CLOSED and _within(c.closed_at, lo, hi)
    )
    resolved: dict[CaseType, list[dt.timedelta]] = {t: [] for t in RESOLVED_TYPES}
    for case in inputs.cases:
        if (
            case.case_type in resolved
            and case.status is CaseStatus.CLOSED
            and case.closed_at is not None
            and _within(case.closed_at, lo, hi)
        ):
            resolved[case.case_type].append(case.closed_at - case.opened_at)
    events = [e for e in inputs.events if _within(e.at, lo, hi)]
    overdue = [c for c in inputs.cases if overdue_at(c, period.end, hi)]
    balances: dict[str, Decimal] = {}
    for case in overdue:
        currency = case.currency or "?"
        balances[currency] = balances.get(currency, Decimal(0)) + balance_at(case, period.end)

    return Figures(
        period=period.label,
        start=period.start,
        end=period.end,
        stops_attempted=len(stops),
        delivered=len(delivered),
        failed_attempts=len(failed),
        first_attempts=len(first),
        first_attempt_success=Rate.of(
            sum(s.outcome is StopOutcome.DELIVERED for s in first), len(first)
        ),
        on_time=Rate.of(sum(promised), len(promised)),
        failed_by_reason=dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        returns_to_sender=len({e.case_id for e in events if e.kind == RETURNED}),
        claims_opened=len(opened),
        claims_per_1000_stops=PerThousand.of(len(opened), len(stops)),
        claims_filed=len(filed),
        claims_filed_within_72h=Rate.of(sum(bool(filed_in_time(c)) for c in filed), len(filed)),
        claims_paid=closed_claims[Resolution.PAID],
        claims_denied=closed_claims[Resolution.DENIED],
        claims_withdrawn=closed_claims[Resolution.WITHDRAWN],
        claims_open=sum(_open_at(c, hi) for c in claims),
        time_to_resolve={t: Durations.of(spans) for t, spans in resolved.items()},
        escalations=sum(e.kind == ESCALATED for e in events),
        invoices_overdue=len(overdue),
        overdue_balance=[Money(currency=k, amount=v) for k, v in sorted(balances.items())],
    )


def compute_figures(inputs: ReportInputs, period: Window) -> Figures:
    """Every figure of one period."""
    return _figures(_Sorted(inputs), period)


# --- the daily exceptions --------------------------------------------------------------------


class ExceptionLine(BaseModel):
    """One case in the daily summary, with where to find it in the console."""

    case_id: str
    case_type: CaseType
    business_key: str
    status: CaseStatus = Field(description="Where the case stands now.")
    resolution: Resolution | None = None
    at: dt.datetime = Field(description="When it happened (opened, resolved, escalated).")
    deadline_at: dt.datetime | None = None
    console_path: str


class DailyExceptions(BaseModel):
    failed_deliveries_opened: list[ExceptionLine]
    failed_deliveries_resolved: list[ExceptionLine]
    returns_to_sender: list[ExceptionLine]
    claims_opened: list[ExceptionLine]
    escalations_open: list[ExceptionLine] = Field(
        description="Escalated cases still open at the day's end, most recent escalation first."
    )

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.failed_deliveries_opened,
                self.failed_deliveries_resolved,
                self.returns_to_sender,
                self.claims_opened,
                self.escalations_open,
            )
        )


def console_path(case_id: str) -> str:
    return f"/console/cases/{quote(case_id, safe='')}"


def _line(case: CaseRow, at: dt.datetime) -> ExceptionLine:
    return ExceptionLine(
        case_id=case.case_id,
        case_type=case.case_type,
        business_key=case.business_key,
        status=case.status,
        resolution=case.resolution,
        at=at,
        deadline_at=case.deadline_at,
        console_path=console_path(case.case_id),
    )


def daily_exceptions(inputs: ReportInputs, day: Window) -> DailyExceptions:
    lo, hi = day.bounds(inputs.timezone)
    by_id = {c.case_id: c for c in inputs.cases}
    failed = [c for c in inputs.cases if c.case_type is CaseType.FAILED_DELIVERY]
    returned: dict[str, dt.datetime] = {}
    last_escalation: dict[str, dt.datetime] = {}
    for event in inputs.events:
        if event.kind == RETURNED and _within(event.at, lo, hi):
            returned.setdefault(event.case_id, event.at)
        if event.kind == ESCALATED and event.at < hi:
            seen = last_escalation.get(event.case_id, event.at)
            last_escalation[event.case_id] = max(event.at, seen)

    def ordered(lines: Iterable[ExceptionLine], newest_first: bool = False) -> list[ExceptionLine]:
        return sorted(lines, key=lambda line: (line.at, line.case_id), reverse=newest_first)

    return DailyExceptions(
        failed_deliveries_opened=ordered(
            _line(c, c.opened_at) for c in failed if _within(c.opened_at, lo, hi)
        ),
        failed_deliveries_resolved=ordered(
            _line(c, c.closed_at)
            for c in failed
            if c.closed_at is not None
            and c.status is CaseStatus.CLOSED
            and _within(c.closed_at, lo, hi)
        ),
        returns_to_sender=ordered(
            _line(by_id[case_id], at) for case_id, at in returned.items() if case_id in by_id
        ),
        claims_opened=ordered(
            _line(c, c.opened_at)
            for c in inputs.cases
            if c.case_type is CaseType.DAMAGE_CLAIM and _within(c.opened_at, lo, hi)
        ),
        escalations_open=ordered(
            (
                _line(by_id[case_id], at)
                for case_id, at in last_escalation.items()
                if case_id in by_id and _open_at(by_id[case_id], hi)
            ),
            newest_first=True,
        ),
    )


# --- the report ------------------------------------------------------------------------------


class SeriesPoint(BaseModel):
    period: str
    first_attempt_success: Rate
    on_time: Rate


class Report(BaseModel):
    """A report's figures: the period's, the previous period's, the four-week trend (oldest
    first) and, for a weekly report, the 12 weeks of its trend chart; a daily report has its
    exceptions."""

    client_id: str
    kind: ReportKind
    period: str
    timezone: str
    figures: Figures
    previous: Figures
    trend: list[Figures]
    series: list[SeriesPoint] = Field(default_factory=list)
    exceptions: DailyExceptions | None = None


def build_report(inputs: ReportInputs, kind: ReportKind, label: str) -> Report:
    """The whole report of one period (ValueError for a malformed label)."""
    data = _Sorted(inputs)
    cache: dict[Window, Figures] = {}

    def figures(period: Window) -> Figures:
        if period not in cache:
            cache[period] = _figures(data, period)
        return cache[period]

    current = window(kind, label)
    previous = window(kind, period_label(kind, current.start - dt.timedelta(days=1)))
    series = (
        [
            SeriesPoint(
                period=w.label,
                first_attempt_success=figures(w).first_attempt_success,
                on_time=figures(w).on_time,
            )
            for w in series_windows(kind, label)
        ]
        if kind is ReportKind.WEEKLY
        else []
    )
    return Report(
        client_id=inputs.client_id,
        kind=kind,
        period=label,
        timezone=inputs.timezone,
        figures=figures(current),
        previous=figures(previous),
        trend=[figures(w) for w in trend_windows(kind, label)],
        series=series,
        exceptions=daily_exceptions(inputs, current) if kind is ReportKind.DAILY else None,
    )


# --- the rows behind the figures (the CSV) ---------------------------------------------------

ROW_COLUMNS = (
    "row",
    "id",
    "attempt_number",
    "at_utc",
    "local_date",
    "outcome",
    "reason",
    "promised_on",
    "first_attempt",
    "on_time",
    "case_type",
    "status",
    "resolution",
    "opened_at_utc",
    "closed_at_utc",
    "hours_to_resolve",
    "delivery_event_at_utc",
    "filed_at_utc",
    "filed_within_72h",
    "escalations_in_period",
    "returned_to_sender_in_period",
    "overdue_at_end",
    "balance_at_end",
    "currency",
)


def _iso(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if at else ""


def _flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def underlying_rows(inputs: ReportInputs, period: Window) -> list[dict[str, str]]:
    """Every stop of the period and every case one of its figures counts, one row each with
    the values the figures were computed from (exact: hours to resolve unrounded to the
    microsecond, money as it is held)."""
    tz = inputs.timezone
    zone = ZoneInfo(tz)
    lo, hi = period.bounds(tz)
    rows: list[dict[str, str]] = []
    for stop in _Sorted(inputs).stops_in(lo, hi):
        rows.append(
            {
                "row": "stop",
                "id": stop.shipment_id,
                "attempt_number": str(stop.attempt_number),
                "at_utc": _iso(stop.attempted_at),
                "local_date": stop.attempted_at.astimezone(zone).date().isoformat(),
                "outcome": stop.outcome.value,
                "reason": (stop.reason or REASON_NOT_REPORTED)
                if stop.outcome is StopOutcome.FAILED
                else "",
                "promised_on": stop.promised_on.isoformat() if stop.promised_on else "",
                "first_attempt": _flag(stop.attempt_number == 1),
                "on_time": _flag(on_time(stop, tz)),
            }
        )
    escalations = Counter(
        e.case_id for e in inputs.events if e.kind == ESCALATED and _within(e.at, lo, hi)
    )
    returned = {e.case_id for e in inputs.events if e.kind == RETURNED and _within(e.at, lo, hi)}
    for case in sorted(inputs.cases, key=lambda c: (c.opened_at, c.case_id)):
        is_claim = case.case_type is CaseType.DAMAGE_CLAIM
        closed_here = case.closed_at is not None and _within(case.closed_at, lo, hi)
        resolved_here = closed_here and case.status is CaseStatus.CLOSED
        overdue = overdue_at(case, period.end, hi)
        counted = (
            (is_claim and (_within(case.opened_at, lo, hi) or _open_at(case, hi)))
            or (is_claim and _within(case.filed_at, lo, hi))
            or (resolved_here and case.case_type in RESOLVED_TYPES)
            or case.case_id in escalations
            or case.case_id in returned
            or overdue
        )
        if not counted:
            continue
        hours = ""
        if resolved_here and case.closed_at is not None:
            micros = _micros(case.closed_at - case.opened_at)
            hours = format(Decimal(micros) / Decimal(3_600_000_000), "f")
        rows.append(
            {
                "row": "case",
                "id": case.case_id,
                "case_type": case.case_type.value,
                "status": case.status.value,
                "resolution": case.resolution.value if case.resolution else "",
                "opened_at_utc": _iso(case.opened_at),
                "closed_at_utc": _iso(case.closed_at),
                "hours_to_resolve": hours,
                "delivery_event_at_utc": _iso(case.delivery_event_at) if is_claim else "",
                "filed_at_utc": _iso(case.filed_at) if is_claim else "",
                "filed_within_72h": _flag(filed_in_time(case)) if is_claim else "",
                "escalations_in_period": str(escalations.get(case.case_id, 0)),
                "returned_to_sender_in_period": _flag(case.case_id in returned)
                if case.case_type is CaseType.FAILED_DELIVERY
                else "",
                "overdue_at_end": _flag(overdue)
                if case.case_type is CaseType.UNPAID_INVOICE
                else "",
                "balance_at_end": format(balance_at(case, period.end), "f") if overdue else "",
                "currency": (case.currency or "") if overdue else "",
            }
        )
    return [{column: row.get(column, "") for column in ROW_COLUMNS} for row in rows]


# --- the figures as a table (the email, the PDF and the console show the same one) --------


class FigureLine(BaseModel):
    """One figure: its name, this period's value, the previous period's and the four-week
    trend's (oldest first), each as shown ("75.0%", "no data", "12")."""

    name: str
    formula: str
    current: str
    previous: str
    trend: list[str]


def _hours(value: Decimal | None) -> str:
    return "no data" if value is None else f"{value} h"


def _balance(money: list[Money]) -> str:
    return ", ".join(f"{m.amount} {m.currency}" for m in money) or "none"


_LINES: list[tuple[str, str, Callable[[Figures], str]]] = [
    ("Stops attempted", "delivery records in the period", lambda f: str(f.stops_attempted)),
    (
        "First-attempt success",
        "first attempts delivered / first attempts",
        lambda f: f.first_attempt_success.text,
    ),
    (
        "On-time rate",
        "delivered by the promised day / delivered stops with a promised day",
        lambda f: f.on_time.text,
    ),
    ("Failed attempts", "failed delivery records", lambda f: str(f.failed_attempts)),
    (
        "Returns to sender",
        "cases turned to returning to sender",
        lambda f: str(f.returns_to_sender),
    ),
    ("Claims opened", "damage / loss claims opened", lambda f: str(f.claims_opened)),
    (
        "Claims per 1,000 stops",
        "claims opened x 1000 / stops attempted",
        lambda f: f.claims_per_1000_stops.text,
    ),
    (
        "Claims filed within 72 h",
        "claims filed <= 72 h after the delivery event / claims filed",
        lambda f: f.claims_filed_within_72h.text,
    ),
    ("Claims paid", "claims closed paid", lambda f: str(f.claims_paid)),
    ("Claims denied", "claims closed denied", lambda f: str(f.claims_denied)),
    *[
        (
            f"Time to resolve, {case_type.value.replace('_', ' ')} (median / p90)",
            "closed_at - opened_at of the cases closed in the period",
            lambda f, t=case_type: (
                f"{_hours(f.time_to_resolve[t].median_hours)} / "
                f"{_hours(f.time_to_resolve[t].p90_hours)}"
            ),
        )
        for case_type in RESOLVED_TYPES
    ],
    ("Escalations", "escalation events of the client's cases", lambda f: str(f.escalations)),
    (
        "Invoices overdue",
        "open at the end, due by its last day, balance above zero",
        lambda f: str(f.invoices_overdue),
    ),
    ("Overdue balance", "their balance at the period's end", lambda f: _balance(f.overdue_balance)),
]


def figure_table(report: Report) -> list[FigureLine]:
    return [
        FigureLine(
            name=name,
            formula=formula,
            current=show(report.figures),
            previous=show(report.previous),
            trend=[show(week) for week in report.trend],
        )
        for name, formula, show in _LINES
    ]
