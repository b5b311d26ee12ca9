"""Email rendering: one Jinja2 environment, three files per template.

A template name such as `failed_delivery/customer_notice` means
`<name>.subject.txt`, `<name>.txt` and `<name>.html` under `templates/email/`. HTML is
autoescaped (customer names and addresses are untrusted text); undefined variables are errors,
so templates say `| default(...)` wherever a key may be absent.
Helpers for the driver emails are both filters and globals: `document_label(kind)`,
`document_description(kind)`, `accepted_types(kind)` (from the upload rules) and
`what_to_bring(vehicle_type)`; `vehicle_label` is a filter. Money arrives as a decimal string
with its currency: `amount | money(currency)` shows "1,234.50 GBP" (the currency's own minor
units, from babel: "150,000 JPY"). `when | human_datetime` shows a moment in the message's
`timezone` with the zone's abbreviation ("Sat 28 Nov 2026, 10:00 GMT"), never as ISO text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import jinja2
from babel.numbers import format_decimal, get_currency_precision, is_currency

from activities.briefing import what_to_bring
from core.uploads import ALLOWED_CONTENT_TYPES, HEIC, HEIF, JPEG, PDF, PNG, TEXT, WEBP
from schemas.documents import DocumentKind
from schemas.enums import FailureReason, VehicleType
from schemas.ui_text import zone

DEFAULT_TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "email"


class TemplateRenderError(Exception):
    """A template is missing, does not compile, or needs a value the context lacks."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def failure_reason_text(value: Any) -> str:
    """`not_home` → "Nobody was there to receive the parcel." (unknown values made readable)."""
    text = str(value)
    try:
        return FailureReason(text).description
    except ValueError:
        pass
    if re.fullmatch(r"[a-z]+(_[a-z]+)*", text):
        return text.replace("_", " ").capitalize() + "."
    return text


def _readable(code: str) -> str:
    """`proof_of_insurance` → "Proof of insurance"."""
    return code.replace("_", " ").strip().capitalize()


def _document_kind(value: Any) -> DocumentKind | None:
    try:
        return DocumentKind(getattr(value, "value", value))
    except ValueError:
        return None


def document_label(value: Any) -> str:
    """A document kind as a short label: `driving_licence` → "Driving licence" (unknown
    codes made readable the same way, other text shown as given)."""
    text = str(getattr(value, "value", value))
    return _readable(text) if re.fullmatch(r"[a-z]+(_[a-z]+)*", text) else text


def document_description(value: Any) -> str:
    """What a document kind is, in a sentence (its label when the kind is unknown)."""
    kind = _document_kind(value)
    return kind.description if kind is not None else document_label(value)


# The names people know the file types by, in the order they are listed. HEIF is named as
# HEIC: phones save both as "HEIC" photos.
_TYPE_NAMES = {
    PDF: "PDF",
    PNG: "PNG",
    JPEG: "JPEG",
    WEBP: "WEBP",
    HEIC: "HEIC",
    HEIF: "HEIC",
    TEXT: "plain text",
}


def accepted_types(value: Any) -> str:
    """The file types an upload of this kind may be, e.g. "PDF, PNG, JPEG, WEBP, HEIC"
    (what `core.uploads` accepts; an unknown kind gets what most kinds accept)."""
    allowed = ALLOWED_CONTENT_TYPES[_document_kind(value) or DocumentKind.OTHER]
    names = [name for content_type, name in _TYPE_NAMES.items() if content_type in allowed]
    return ", ".join(dict.fromkeys(names))


def vehicle_label(value: Any) -> str:
    """`cargo_bike` → "cargo bike" (text that is not a vehicle type shown as given)."""
    text = str(getattr(value, "value", value))
    try:
        return VehicleType(text).value.replace("_", " ")
    except ValueError:
        return text


def money(amount: Any, currency: Any = None) -> str:
    """A decimal amount (string or Decimal) with its currency: "1,234.50 GBP", "150,000 JPY".
    The currency's minor units are always shown; an amount with more places than that is
    shown in full, never rounded. Text that is not an amount is shown as given."""
    code = str(currency or "").strip().upper()
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return f"{amount} {code}".strip()
    if not value.is_finite():
        return f"{amount} {code}".strip()
    places = get_currency_precision(code) if is_currency(code) else 2
    pattern = "#,##0" + ("." + "0" * places if places else "")
    shown = format_decimal(value, format=pattern, locale="en", decimal_quantization=False)
    return f"{shown} {code}".strip()


def _as_datetime(value: Any) -> datetime | date | None:
    if isinstance(value, datetime | date):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            return None


def human_date(value: Any) -> str:
    """An ISO date or datetime as "Tue 24 Nov 2026" (other text is shown as given)."""
    parsed = _as_datetime(value)
    if parsed is None:
        return str(value)
    return f"{parsed:%a} {parsed.day} {parsed:%b %Y}"


def human_datetime(value: Any, zone_name: str | None = None) -> str:
    """An ISO datetime as "Tue 24 Nov 2026, 14:00 GMT": in the IANA zone `zone_name` when
    given (UTC for a name this machine does not know), else in its own offset. A date alone
    is shown as `human_date`."""
    parsed = _as_datetime(value)
    if not isinstance(parsed, datetime):
        return human_date(value)
    if zone_name and parsed.tzinfo:
        parsed = parsed.astimezone(zone(zone_name))
    abbreviation = f" {parsed.tzname()}" if parsed.tzinfo else ""
    return f"{human_date(parsed)}, {parsed:%H:%M}{abbreviation}"


@jinja2.pass_context
def _local_datetime(context: jinja2.runtime.Context, value: Any) -> str:
    """The `human_datetime` filter: in the message's `timezone` (the case's zone, which
    `send_message` adds), so "10:00 UTC" reads "Sat 28 Nov 2026, 10:00 GMT" in London."""
    zone_name = context.get("timezone")
    return human_datetime(value, zone_name if isinstance(zone_name, str) else None)


class EmailRenderer:
    """Built once (in worker.py) and shared by every `send_message` call."""

    def __init__(self, template_dir: Path = DEFAULT_TEMPLATE_DIR) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(template_dir),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.filters["failure_reason"] = failure_reason_text
        self._env.filters["human_date"] = human_date
        self._env.filters["human_datetime"] = _local_datetime
        self._env.filters["vehicle_label"] = vehicle_label
        self._env.filters["money"] = money
        for helper in (document_label, document_description, accepted_types, what_to_bring):
            self._env.filters[helper.__name__] = helper
            self._env.globals[helper.__name__] = helper

    def render(self, template: str, context: dict[str, Any]) -> RenderedEmail:
        if ".." in template.split("/") or template.startswith("/"):
            raise TemplateRenderError(f"invalid template name {template!r}")
        try:
            subject = self._env.get_template(f"{template}.subject.txt").render(context)
            text = self._env.get_template(f"{template}.txt").render(context)
            html = self._env.get_template(f"{template}.html").render(context)
        except jinja2.TemplateNotFound as err:
            raise TemplateRenderError(f"template file {err.name!r} not found") from None
        except jinja2.TemplateError as err:
            raise TemplateRenderError(f"template {template!r} failed: {err}") from None
        # One line, however the subject file wraps it (a newline would break the header).
        return RenderedEmail(subject=" ".join(subject.split()), text=text.strip() + "\n", html=html)
