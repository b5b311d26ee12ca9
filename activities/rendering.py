"""Email rendering: one Jinja2 environment, three files per template.

A template name such as `failed_delivery/customer_notice` means
`<name>.subject.txt`, `<name>.txt` and `<name>.html` under `templates/email/`. HTML is
autoescaped (customer names and addresses are untrusted text); undefined variables are errors,
so templates say `| default(...)` wherever a key may be absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2

from schemas.enums import FailureReason

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


def human_datetime(value: Any) -> str:
    """An ISO datetime as "Tue 24 Nov 2026, 14:00 UTC" (a date alone as `human_date`)."""
    parsed = _as_datetime(value)
    if not isinstance(parsed, datetime):
        return human_date(value)
    zone = f" {parsed.tzname()}" if parsed.tzinfo else ""
    return f"{human_date(parsed)}, {parsed:%H:%M}{zone}"


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
        self._env.filters["human_datetime"] = human_datetime

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
