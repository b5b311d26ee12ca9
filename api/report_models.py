"""The API's shapes for client reporting: a client's `reporting` settings in and out, report
runs, a report's figures and what was sent, and the report schedules."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.errors import invalid
from api.models import In, ReportingOut
from schemas import examples
from schemas.enums import ContactKind
from schemas.examples import example
from schemas.report_figures import FigureLine, Report
from schemas.reporting import ReportingSettings, ReportKind, ReportOutcome
from schemas.tables import ClientContact


def resolve_contacts(
    items: Sequence[str], contacts: Sequence[ClientContact], *, field: str = "reporting.contacts"
) -> list[uuid.UUID]:
    """Each item as the id of one of the client's reporting contacts (given by id or email,
    case-insensitively); 422 naming the item otherwise."""
    reporting = [c for c in contacts if c.kind is ContactKind.REPORTING]
    by_id = {str(c.id): c.id for c in reporting}
    by_email = {c.email.lower(): c.id for c in reporting}
    resolved: list[uuid.UUID] = []
    for index, item in enumerate(items):
        text = item.strip()
        found = by_id.get(text.lower()) or by_email.get(text.lower())
        if found is None:
            raise invalid(
                f"{field}[{index}]",
                f"{text[:80]!r} is not one of the client's reporting contacts (by id or email)",
            )
        if found in resolved:
            raise invalid(f"{field}[{index}]", "this contact is listed twice")
        resolved.append(found)
    return resolved


def reporting_out(settings: ReportingSettings, contacts: Sequence[ClientContact]) -> ReportingOut:
    listed = set(settings.contacts)
    recipients = [
        c.id
        for c in sorted(contacts, key=lambda c: (c.name, str(c.id)))
        if c.kind is ContactKind.REPORTING and (not listed or c.id in listed)
    ]
    on = settings.daily or settings.weekly
    status: Literal["off", "ok", "no_reporting_contact"] = (
        "off" if not on else ("ok" if recipients else "no_reporting_contact")
    )
    return ReportingOut(
        daily=settings.daily,
        weekly=settings.weekly,
        hour=settings.hour,
        contacts=list(settings.contacts),
        recipients=recipients,
        status=status,
    )


# --- runs ----------------------------------------------------------------------------------


class ReportRunIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.report_run))

    client_id: str = Field(min_length=1, max_length=64)
    kind: ReportKind
    period: str = Field(
        min_length=1,
        max_length=16,
        description="Weekly: an ISO week (`2026-W48`); daily: a date (`2026-11-25`); over in "
        "the client's time zone.",
    )


class ReportRunOut(BaseModel):
    run_id: str
    status: str = Field(description="`running`, `completed`, `failed`, …")
    client_id: str
    kind: ReportKind | None = None
    period: str | None = None
    outcome: ReportOutcome | None = None
    message: str | None = None
    recipients: int | None = None
    message_keys: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    failure_type: str | None = None
    trace_url: str


# --- a report -------------------------------------------------------------------------------


class SentReport(BaseModel):
    """What the report run recorded and sent for this period."""

    report_id: str
    status: str = Field(description="`prepared`, `sent`, `no_recipients`, `send_failed`.")
    as_of: dt.datetime
    created_at: dt.datetime
    sent_at: dt.datetime | None
    recipients: int
    message_keys: list[str]
    problems: list[str]
    charts: dict[str, str] = Field(description="name -> the URL of the stored chart.")
    pdf_url: str | None = None
    csv_url: str | None = None


class ReportOut(BaseModel):
    """The figures of a client's period, computed now by the same function as the emails,
    with what was sent for the period (figures as they were then)."""

    report: Report
    table: list[FigureLine] = Field(description="The figures as the email and PDF show them.")
    complete: bool = Field(description="The period is over in the client's time zone.")
    sent: SentReport | None = None


class ScheduleOut(BaseModel):
    schedule_id: str
    kind: ReportKind
    exists: bool
    paused: bool | None = None
    note: str | None = None
    hour: int | None = None
    timezone: str | None = None
    next_runs: list[dt.datetime] = Field(default_factory=list)
    recent_runs: list[dict[str, object]] = Field(default_factory=list)
    catchup_window_seconds: float | None = None
    error: str | None = Field(
        None, description="Temporal could not describe the schedule now (the rest still answers)."
    )


class ClientReportsOut(BaseModel):
    client_id: str
    timezone: str
    reporting: ReportingOut
    schedules: list[ScheduleOut]
    latest: dict[str, SentReport] = Field(description="kind -> the latest report run.")


class ScheduleNoteIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.report_schedule_note))

    note: str = Field(min_length=1, max_length=500, description="Why, for whoever looks next.")
    kind: ReportKind | None = Field(None, description="One report's schedule; default both.")
