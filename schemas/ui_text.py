"""What the Temporal UI says about a case: its static summary and details (set when the
workflow starts) and the times its current details show.

Pure functions of ids, types, statuses and dates, shared by the API (which starts cases) and
the workflows (which start child cases and publish current details). No personal data goes
into any of it: Temporal encrypts user metadata with the payload codec (`core.codec`, checked
by tests/api/test_personal_data.py), but the UI shows it to everyone who can read the
namespace through the codec server, so only what identifies the case is said here.

Times are shown in the case's zone (the depot's or the client's IANA name, `UTC` when unknown
or not a zone this machine knows), with the zone's abbreviation: "Thu 3 Dec 14:00 GMT". The
conversion reads the time zone database only; it is deterministic for a given database, and
the current details it feeds are no history command, so replay never depends on it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from schemas.enums import CaseStatus, CaseType

KEY_NOUN = {
    CaseType.FAILED_DELIVERY: "shipment",
    CaseType.DAMAGE_CLAIM: "shipment",
    CaseType.DRIVER_ONBOARDING: "driver",
    CaseType.DRIVER_COMPLIANCE: "driver",
    CaseType.UNPAID_INVOICE: "invoice",
}
"""What a case type's business key is the id of."""

WAITING_ON = {
    CaseStatus.OPEN: "the case's first steps",
    CaseStatus.WAITING_ON_CUSTOMER: "the customer (how to receive the parcel)",
    CaseStatus.REDELIVERY_SCHEDULED: "the depot (the redelivery's outcome)",
    CaseStatus.RETURNING_TO_SENDER: "the depot (the return to the client shipper)",
    CaseStatus.GATHERING_EVIDENCE: "the driver and the customer (the claim's evidence)",
    CaseStatus.AWAITING_DECISION: "the carrier or insurer (their decision)",
    CaseStatus.COLLECTING_DOCUMENTS: "the driver (documents) and ops (reviews)",
    CaseStatus.MONITORING: "the next document expiry",
    CaseStatus.RENEWAL_REQUESTED: "the driver (a renewed document)",
    CaseStatus.SUSPENDED: "the driver (an approved replacement)",
    CaseStatus.AWAITING_PAYMENT: "the client (payment)",
    CaseStatus.DISPUTED: "the account manager (the dispute)",
    CaseStatus.PAYMENT_PROMISED: "the client (the promised payment)",
}
"""Whom a case in each open status waits on, in words."""


def type_words(case_type: CaseType) -> str:
    """The type in words: "Failed delivery", "Driver onboarding"."""
    return case_type.value.replace("_", " ").capitalize()


def zone(name: str | None) -> tzinfo:
    """The named IANA zone; UTC when there is no name or this machine does not know it."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local_time(at: datetime, zone_name: str | None) -> str:
    """`at` in the zone, with its abbreviation: "Thu 3 Dec 14:00 GMT"."""
    local = at.astimezone(zone(zone_name))
    return f"{local:%a} {local.day} {local:%b %H:%M} {local.tzname() or 'UTC'}"


def duration(span: timedelta) -> str:
    """A span in its largest whole unit: "72 h", "5 d", "30 min"."""
    seconds = int(span.total_seconds())
    if seconds and seconds % 86400 == 0 and seconds >= 4 * 86400:
        return f"{seconds // 86400} d"
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def offset_words(offset: timedelta) -> str:
    """A dunning step's offset from the due date, in days when whole: "+14 d", "-3 d"."""
    sign = "-" if offset < timedelta(0) else "+"
    span = abs(offset)
    if span.total_seconds() % 86400 == 0:
        return f"{sign}{span.days} d"
    return f"{sign}{duration(span)}"


def case_summary(case_type: CaseType, business_key: str, client_id: str | None) -> str:
    """The static summary: "Failed delivery · shipment SHP-1042 · demo-shop"."""
    parts = [type_words(case_type), f"{KEY_NOUN[case_type]} {business_key}"]
    if client_id:
        parts.append(client_id)
    return " · ".join(parts)


def policy_terms(policy: BaseModel) -> list[str]:
    """The policy's spans, "reminder after 24 h" (the durations a case's dates come from)."""
    terms = []
    for name, value in policy:
        spans = value if isinstance(value, tuple) else (value,)
        if spans and all(isinstance(span, timedelta) for span in spans):
            words = name.replace("_", " ")
            terms.append(f"{words} {', '.join(duration(span) for span in spans)}")
    return terms


def case_details(
    case_type: CaseType,
    *,
    subject: str,
    client_id: str | None,
    depot_id: str | None,
    zone_name: str | None,
    policy: BaseModel | None = None,
    key_dates: dict[str, datetime] | None = None,
) -> str:
    """The static details: a few markdown lines saying what the case is and its key dates."""
    lines = [f"**{type_words(case_type)}**: {case_type.description}", f"Subject: {subject}"]
    where = [f"client `{client_id}`"] if client_id else []
    if depot_id:
        where.append(f"depot `{depot_id}`")
    if where:
        lines.append(f"For {' and '.join(where)}; times in {zone_name or 'UTC'}.")
    for label, at in (key_dates or {}).items():
        lines.append(f"{label}: {local_time(at, zone_name)}")
    if policy is not None and (terms := policy_terms(policy)):
        lines.append(f"Policy: {'; '.join(terms)}")
    return "\n\n".join(lines)
