"""How the console shows a case's values to a person: times in the case's zone with UTC on
hover, status badges coloured by what the status means, human labels for detail fields,
money in its currency's own minor units, enum values with what they mean.

Installed as Jinja filters and globals on the pages' environment (`install`), so every console
template says times, statuses and fields the same way."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from babel.numbers import format_currency, get_currency_precision, is_currency
from jinja2 import Environment
from markupsafe import Markup, escape
from pydantic import TypeAdapter

from schemas.claims import ReportedBy
from schemas.documents import ClaimType
from schemas.enums import (
    CaseStatus,
    DescribedEnum,
    FailureReason,
    RedeliveryOption,
    Resolution,
    TimeWindow,
    VehicleType,
)
from schemas.ui_text import zone

# --- times -------------------------------------------------------------------------------


def local(value: datetime | None, zone_name: str | None = None, *, style: str = "full") -> Markup:
    """`<time>` in the case's zone ("Thu 3 Dec 2026, 14:00 GMT"), the UTC instant on hover
    and in `datetime`; "—" for no time. `style="date"` shows the day only."""
    if value is None:
        return Markup("—")
    if value.tzinfo is None:  # the index stores UTC
        value = value.replace(tzinfo=UTC)
    shown = value.astimezone(zone(zone_name))
    abbreviation = shown.tzname() or "UTC"
    if style == "date":
        text = f"{shown:%a} {shown.day} {shown:%b %Y}"
    else:
        text = f"{shown:%a} {shown.day} {shown:%b %Y}, {shown:%H:%M} {abbreviation}"
    instant = value.astimezone(UTC)
    return Markup('<time datetime="{iso}" title="{utc}">{text}</time>').format(
        iso=instant.isoformat(timespec="seconds").replace("+00:00", "Z"),
        utc=f"{instant:%Y-%m-%d %H:%M} UTC",
        text=text,
    )


# --- statuses ----------------------------------------------------------------------------

_WAITING = {
    CaseStatus.WAITING_ON_CUSTOMER,
    CaseStatus.REDELIVERY_SCHEDULED,
    CaseStatus.AWAITING_DECISION,
    CaseStatus.COLLECTING_DOCUMENTS,
    CaseStatus.MONITORING,
    CaseStatus.RENEWAL_REQUESTED,
    CaseStatus.AWAITING_PAYMENT,
    CaseStatus.PAYMENT_PROMISED,
}
_ALERT = {CaseStatus.SUSPENDED, CaseStatus.DISPUTED}
_DONE = {
    Resolution.DELIVERED,
    Resolution.PAID,
    Resolution.ACTIVATED,
}


def tone(status: CaseStatus, resolution: Resolution | None = None) -> str:
    """What a status means at a glance: `active` (casedesk is working on it), `waiting` (on
    someone else), `alert` (something is wrong), `done` (closed the way one hopes), `ended`
    (closed any other way: returned, denied, abandoned, written off, cancelled)."""
    if status.is_terminal:
        return "done" if resolution in _DONE else "ended"
    if status in _ALERT:
        return "alert"
    if status in _WAITING:
        return "waiting"
    return "active"


def words(value: str) -> str:
    """An enum value as words: "waiting_on_customer" -> "waiting on customer"."""
    return value.replace("_", " ")


def badge(status: CaseStatus, resolution: Resolution | None = None) -> Markup:
    """The status as a coloured badge; a closed case's badge names its resolution."""
    shown = words(resolution.value) if status.is_terminal and resolution else words(status.value)
    title = resolution.description if status.is_terminal and resolution else status.description
    return Markup('<span class="badge status-{tone}" title="{title}">{text}</span>').format(
        tone=tone(status, resolution), title=title, text=shown
    )


# --- detail fields -----------------------------------------------------------------------

LABELS = {
    "shipment_id": "Shipment",
    "depot_id": "Depot",
    "client_id": "Client",
    "driver_id": "Driver",
    "attempt_number": "Attempt",
    "max_attempts": "Attempts allowed",
    "last_reason": "Last failure",
    "damage_reported": "Damage reported",
    "fees_cents": "Failed-attempt fees",
    "currency": "Currency",
    "redelivery": "Redelivery",
    "redelivery_option": "Redelivery option",
    "claim_case_id": "Damage claim",
    "linked_case_id": "Failed-delivery case",
    "client_dispatch_hold": "Client's dispatch hold",
    "policy": "Policy",
    "claim_type": "Claim type",
    "reported_by": "Reported by",
    "declared_value": "Declared value",
    "delivery_event_at": "Delivery event",
    "late": "Reported late",
    "round": "Gathering round",
    "filed_at": "Filed",
    "invoice_id": "Invoice",
    "balance": "Balance",
    "credit": "Credit",
    "due_on": "Due",
    "issued_on": "Issued",
    "vehicle_type": "Vehicle",
    "planned_start_date": "Planned start",
    "window": "Response window",
    "reminder_every": "Reminder every",
    "fee_cents": "Fee per failed attempt",
}
"""Fields whose words are not just their name's."""

_ENUMS: dict[str, type[DescribedEnum]] = {
    "last_reason": FailureReason,
    "reason": FailureReason,
    "redelivery_option": RedeliveryOption,
    "window": TimeWindow,
    "vehicle_type": VehicleType,
    "claim_type": ClaimType,
    "reported_by": ReportedBy,
}
"""Fields holding a described enum's value: shown with what the value means."""

_SUFFIXES = ("_cents", "_minor", "_at", "_on", "_id")


def field_label(key: str) -> str:
    """A detail field's label: "fees_cents" -> "Failed-attempt fees", "sent_at" -> "Sent"."""
    if key in LABELS:
        return LABELS[key]
    stem = key
    for suffix in _SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem.removesuffix(suffix)
            break
    return words(stem).capitalize()


def money(minor: int, currency: str | None) -> str:
    """Minor units in the currency's own precision: 1700 GBP -> "£17.00", 1500 JPY -> "JP¥1,500"."""
    if not currency or not is_currency(currency):
        return str(minor)
    digits = get_currency_precision(currency)
    return format_currency(Decimal(minor).scaleb(-digits), currency, locale="en_GB")


_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DURATION = re.compile(r"^P(?=\d|T\d)(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
_DURATION = TypeAdapter(timedelta)


def duration(delta: timedelta) -> str:
    """A span in words: "3 days", "1 day 12 hours"."""
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts) or "0 seconds"


def _value(key: str, value: Any, zone_name: str | None, currency: str | None) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and key.endswith(("_cents", "_minor")):
        return money(value, currency)
    if not isinstance(value, str):
        return value
    enum = _ENUMS.get(key)
    if enum is not None:
        try:
            member = enum(value)
        except ValueError:
            return value
        return f"{words(member.value).capitalize()}: {member.description}"
    if _ISO_DATETIME.match(value):
        try:
            return local(datetime.fromisoformat(value), zone_name)
        except ValueError:
            return value
    if _ISO_DATE.match(value):
        try:
            day = date.fromisoformat(value)
            return f"{day:%a} {day.day} {day:%b %Y}"
        except ValueError:
            return value
    if _ISO_DURATION.match(value):
        return duration(_DURATION.validate_python(value))
    return value


def readable(
    details: Any, zone_name: str | None = None, currency: str | None = None
) -> dict[str, Any]:
    """A case's details as a person reads them, keyed by label: money in its currency, enum
    values with their meaning, timestamps in the case's zone, ISO durations in words, nested
    objects the same way and lists of plain values on one line."""
    if not isinstance(details, dict):
        return {}
    currency = details.get("currency") if isinstance(details.get("currency"), str) else currency
    shown: dict[str, Any] = {}
    for key, value in details.items():
        if isinstance(value, dict):
            shown[field_label(key)] = readable(value, zone_name, currency)
        elif isinstance(value, list):
            items = [
                readable(item, zone_name, currency)
                if isinstance(item, dict)
                else _value(key, item, zone_name, currency)
                for item in value
            ]
            plain = items and all(not isinstance(item, dict | list) for item in items)
            shown[field_label(key)] = (
                Markup(", ").join(escape(item) for item in items) if plain else items
            )
        else:
            shown[field_label(key)] = _value(key, value, zone_name, currency)
    return shown


def install(env: Environment) -> None:
    """The filters the console's templates use."""
    env.filters["local"] = local
    env.filters["words"] = words
    env.filters["field_label"] = field_label
    env.globals["badge"] = badge
    env.globals["money"] = money
    env.filters["form_label"] = form_label


# --- errors ------------------------------------------------------------------------------

FORM_LABELS = {
    "date": "Day",
    "window": "Window",
    "option": "Choice",
    "pickup_point_id": "Pickup point",
    "neighbour_name": "Neighbour's name",
    "neighbour_address": "Neighbour's address",
    "line1": "Line 1",
    "postal_code": "Postal code",
    "attempted_at": "Attempted at",
    "attempt_number": "Attempt number",
    "driver_id": "Driver",
    "text": "Note",
    "expires_on": "Valid until",
    "paid_on": "Paid on",
    "promised_on": "Promised for",
    "disputed_amount": "Disputed amount",
    "adjusted_amount": "Adjusted amount",
    "customer.email": "Customer's email",
    "customer.name": "Customer's name",
    "customer.phone": "Customer's phone",
    "planned_start_date": "Planned start date",
}
"""The console forms' labels for fields whose words differ from the detail labels."""

_REQUIRED_WHEN = re.compile(
    r"^(?P<fields>[\w., ]+) required when (?P<other>\w+) is (?P<value>\w+)$"
)
_CHOICES = re.compile(r"^Input should be (?P<choices>'.*')$")


def form_label(field: str) -> str:
    """A posted field's label: "missing_reasons.damage_photos" -> "Damage photos"."""
    if field in FORM_LABELS:
        return FORM_LABELS[field]
    last = field.rsplit(".", 1)[-1]
    return FORM_LABELS.get(last) or field_label(last)


def plain_error(field: str, message: str, label: str | None = None) -> str:
    """A validation error as a sentence that names the field as the form labels it:
    ("date", "date required when option is redelivery_window") ->
    "Day is needed when the choice is “redelivery window”."."""
    if label is None:
        label = form_label(field) if field and field != "body" else ""
    required = _REQUIRED_WHEN.match(message)
    if required:
        other = form_label(required["other"]).lower()
        return f"{label or 'This'} is needed when the {other} is “{words(required['value'])}”."
    choices = _CHOICES.match(message)
    if choices:
        options = words(choices["choices"].replace("'", ""))
        return f"{label or 'This'}: choose one of {options}."
    if message == "Field required":
        return f"{label or 'This'} is needed."
    own_name = field.rsplit(".", 1)[-1] + " "
    if label and message.startswith(own_name):  # "missing_reasons must say why ..."
        return _finished(f"{label} {_SNAKE.sub(_unsnake, message.removeprefix(own_name))}")
    sentence = _finished(_SNAKE.sub(_unsnake, message))
    return f"{label}: {sentence}" if label else sentence


_SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


def _unsnake(match: re.Match[str]) -> str:
    return words(match.group(0))


def _finished(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else f"{text}."
