"""Client reporting: the two reports, their periods, a client's `reporting` settings, the report
run's contracts and the failure types the workflow and the API know by name.

- **daily** exception summary: one local day (`2026-11-25`), sent the next morning;
- **weekly** performance report: one ISO week, Monday to Sunday (`2026-W48`), sent on the
  Monday after.

Both are dated in the client's time zone. A scheduled run derives its period from the
schedule's nominal time (`TemporalScheduledStartTime`), never from the clock, so a run that
starts late (caught up after an outage, backfilled) reports the same period.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.documents import DocumentRef
from schemas.enums import DescribedEnum


class ReportKind(DescribedEnum):
    DAILY = "daily", "The exception summary of one day, sent the next morning."
    WEEKLY = "weekly", "The performance report of one ISO week, sent on the Monday after."


RUN_WORKFLOW = "ReportRunWorkflow"
"""The run's workflow type (the API and the schedules start it by name)."""

SCHEDULED_PERIOD = "scheduled_report_period"
PREPARE_REPORT = "prepare_report"
MARK_REPORT_SENT = "mark_report_sent"
"""The activities' names: the workflow calls them by name, so its module never imports the
activities (and with them matplotlib and fpdf2)."""

SEND_MESSAGE = "send_message"

# --- failure types (non-retryable ApplicationErrors of the run and its activities) ---------

UNKNOWN_CLIENT = "UnknownClient"
BAD_PERIOD = "ReportPeriodInvalid"
"""The period is malformed, not of the kind, or not over yet in the client's time zone."""
NOT_SCHEDULED = "ReportRunNotScheduled"
"""A run without a period was not started by a schedule: it has no nominal time."""

RUN_FAILURES = (UNKNOWN_CLIENT, BAD_PERIOD, NOT_SCHEDULED)


# --- periods -------------------------------------------------------------------------------

_ISO_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class PeriodError(ValueError):
    """A period label that is not one of its kind (the message says what is expected)."""


YEARS = range(2000, 3000)
"""Reports cover periods of these years (their trend windows stay far from date limits)."""


def period_days(kind: ReportKind, label: str) -> tuple[dt.date, dt.date]:
    """The first and last local day of a period label: a date for daily, an ISO week
    (`2026-W48`, Monday to Sunday) for weekly. PeriodError for anything else."""
    if kind is ReportKind.DAILY:
        if not _DATE.fullmatch(label):
            raise PeriodError(f"{label[:20]!r} is not a date (YYYY-MM-DD), e.g. 2026-11-25")
        try:
            day = dt.date.fromisoformat(label)
        except ValueError:
            raise PeriodError(f"{label!r} is not a real date") from None
        if day.year not in YEARS:
            raise PeriodError(f"{label!r}: a report's year is from 2000 to 2999")
        return day, day
    match = _ISO_WEEK.fullmatch(label)
    if not match:
        raise PeriodError(f"{label[:20]!r} is not an ISO week (YYYY-Www), e.g. 2026-W48")
    year, week = int(match.group(1)), int(match.group(2))
    if year not in YEARS:
        raise PeriodError(f"{label!r}: a report's year is from 2000 to 2999")
    try:
        monday = dt.date.fromisocalendar(year, week, 1)
    except ValueError:
        raise PeriodError(f"{label!r}: {year} has no week {week}") from None
    return monday, monday + dt.timedelta(days=6)


def period_label(kind: ReportKind, day: dt.date) -> str:
    """The label of the period that contains `day`."""
    if kind is ReportKind.DAILY:
        return day.isoformat()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def previous_label(kind: ReportKind, label: str) -> str:
    start, _ = period_days(kind, label)
    return period_label(kind, start - dt.timedelta(days=1))


def scheduled_period(kind: ReportKind, nominal: dt.datetime, timezone: str) -> str:
    """The period a scheduled run reports, from its nominal time in the client's time zone:
    daily, the local day before; weekly, the ISO week before the one the nominal time is in
    (the Monday run reports the Monday-to-Sunday week that just ended)."""
    if nominal.tzinfo is None:
        raise ValueError("the nominal time must be timezone-aware")
    day = nominal.astimezone(ZoneInfo(timezone)).date()
    if kind is ReportKind.DAILY:
        return period_label(kind, day - dt.timedelta(days=1))
    monday = day - dt.timedelta(days=day.weekday())
    return period_label(kind, monday - dt.timedelta(days=7))


def period_is_over(kind: ReportKind, label: str, now: dt.datetime, timezone: str) -> bool:
    """The period's last local day is before today in the client's time zone."""
    _, end = period_days(kind, label)
    return end < now.astimezone(ZoneInfo(timezone)).date()


# --- ids -----------------------------------------------------------------------------------


def report_id(kind: ReportKind, client_id: str, period: str) -> str:
    """The business key: one report per client, kind and period (its run's workflow id, its
    row's id and the stem of its messages' keys)."""
    return f"report-{kind.value}-{client_id}-{period}"


def schedule_id(kind: ReportKind, client_id: str) -> str:
    return f"reports-{kind.value}-{client_id}"


def scheduled_run_id(kind: ReportKind, client_id: str) -> str:
    """The id a schedule's runs start with (Temporal appends the nominal time); each starts
    the business-key run for the period its nominal time gives."""
    return f"report-scheduled-{kind.value}-{client_id}"


def recipient_key(report: str, contact_id: uuid.UUID) -> str:
    return f"{report}/to/{contact_id}"


def account_manager_key(report: str) -> str:
    return f"{report}/copy/account-manager"


def no_contact_key(client_id: str) -> str:
    """The account manager hears once per client that its reports have nobody to go to."""
    return f"reports-{client_id}/no-reporting-contact"


# --- a client's settings ------------------------------------------------------------------


DEFAULT_HOUR = 7


class ReportingSettings(BaseModel):
    """`reporting` on a client: which reports it gets, at what local hour, and to whom.

    `contacts` are ids of the client's `reporting` contacts; empty means all of them. The
    account manager is copied on every report; nobody else receives one."""

    model_config = ConfigDict(extra="forbid")

    daily: bool = Field(False, description="Send the daily exception summary.")
    weekly: bool = Field(False, description="Send the weekly performance report (Mondays).")
    hour: int = Field(
        DEFAULT_HOUR, ge=0, le=23, strict=True, description="Local hour (0-23) of sending."
    )
    contacts: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=50,
        description="Ids of the client's `reporting` contacts; empty: every one of them.",
    )

    @field_validator("contacts")
    @classmethod
    def _distinct(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(set(value)) != len(value):
            raise ValueError("a contact is listed twice")
        return value

    def enabled(self, kind: ReportKind) -> bool:
        return self.daily if kind is ReportKind.DAILY else self.weekly


def reporting_of(stored: Mapping[str, Any] | None) -> ReportingSettings:
    """A client's settings as stored (an empty JSON object: nothing enabled)."""
    return ReportingSettings.model_validate(stored or {})


# --- the run --------------------------------------------------------------------------------


class ReportOutcome(DescribedEnum):
    SENT = "sent", "Emailed to the client's reporting contacts (the account manager copied)."
    ALREADY_SENT = "already_sent", "This client, kind and period was sent before; nothing sent."
    NO_RECIPIENTS = (
        "no_recipients",
        "The client has no reporting contact: nothing was sent (the account manager is told once).",
    )
    NOT_ENABLED = "not_enabled", "A scheduled run for a report the client no longer gets."
    SEND_FAILED = "send_failed", "Some messages could not be sent (see `problems`)."


class ReportRunInput(BaseModel):
    """Ops (and the run a schedule starts) give the period; the schedule's own run gives
    none and derives it from its nominal time."""

    client_id: str = Field(min_length=1, max_length=64)
    kind: ReportKind
    period: str | None = None
    as_of: AwareDatetime | None = Field(
        None, description="The schedule's nominal time, when a scheduled run starts this one."
    )
    requested_by: str = "schedule"

    @property
    def scheduled(self) -> bool:
        return self.period is None


class ScheduledPeriodRequest(BaseModel):
    """`scheduled_report_period`: the period a schedule's nominal time gives, in the client's
    time zone now, and whether the client still gets this report."""

    client_id: str
    kind: ReportKind
    nominal: AwareDatetime


class ScheduledPeriod(BaseModel):
    period: str
    enabled: bool


class PrepareReportRequest(BaseModel):
    """`prepare_report`: compute the figures, render and store the documents, record the
    report (or find it), and say who it goes to."""

    client_id: str
    kind: ReportKind
    period: str
    as_of: AwareDatetime = Field(description="The run's moment (a scheduled run's nominal time).")
    run_id: str


class PreparedReport(BaseModel):
    """What the run needs to send a report: ids and references, no personal data."""

    report_id: str
    client_id: str
    kind: ReportKind
    period: str
    sent_before: bool = Field(description="The report's emails went out already.")
    recipients: list[uuid.UUID] = Field(description="The reporting contacts it goes to.")
    account_manager: bool = Field(description="The client has an account manager to copy.")
    template: str
    context: dict[str, object] = Field(description="The email's figures, as rendered.")
    attachments: list[DocumentRef] = Field(default_factory=list)
    inline_images: dict[str, DocumentRef] = Field(
        default_factory=dict, description="content id -> the chart embedded under it"
    )


class MarkSentRequest(BaseModel):
    report_id: str
    outcome: ReportOutcome
    message_keys: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


class ReportRunResult(BaseModel):
    client_id: str
    kind: ReportKind
    period: str
    report_id: str
    outcome: ReportOutcome
    message: str
    recipients: int = 0
    message_keys: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
