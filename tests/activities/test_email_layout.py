"""Every email template, rendered with realistic values (the demo client, a signed link as
long as the real ones, times in UTC as the workflows pass them), is safe at 600 px in the
common clients: nothing wider than the 600px column, every long address where it can wrap,
a plain-text part with every link the HTML has, and times in the case's zone with the
zone's abbreviation, never ISO text."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from activities.rendering import DEFAULT_TEMPLATE_DIR, EmailRenderer, RenderedEmail

TEMPLATES = sorted(
    path.relative_to(DEFAULT_TEMPLATE_DIR).as_posix().removesuffix(".subject.txt")
    for path in Path(DEFAULT_TEMPLATE_DIR).rglob("*.subject.txt")
)
SIGNED_LINK = "http://127.0.0.1:8000/r/" + "eyJwdXJwb3NlIjoicmVzY2hlZHVsZSJ9." * 5 + "c2lnbmF0dXJl"
TRACE_URL = (
    "http://127.0.0.1:8233/namespaces/default/workflows/failed-delivery-SHP-2026-048213/"
    "0199d7a2-4c1e-7b43-9f0a-3e6c2b8d1f57/history"
)
CONSOLE_URL = "http://127.0.0.1:8000/console/reports/demo-shop?kind=weekly&period=2026-W48"

# What the workflows and activities pass, in the demo data's words; moments in UTC.
REALISTIC: dict[str, Any] = {
    "recipient_name": "Jamie Example",
    "case_id": "failed-delivery-SHP-2026-048213",
    "trace_url": TRACE_URL,
    "timezone": "Europe/London",
    "subject": "Failed delivery SHP-2026-048213 for Demo Shop Ltd",
    "client_id": "demo-shop",
    "client_name": "Demo Shop Ltd",
    # failed delivery
    "shipment_id": "SHP-2026-048213",
    "attempt_number": 2,
    "reason": "access_problem",
    "respond_by": "2026-11-28T10:00:00+00:00",
    "summary": "Redelivery on Tue 24 Nov, 08:00-12:00",
    "delivery_date": "2026-11-24",
    "escalation_reason": "The customer did not answer within 48 hours",
    "link_url": SIGNED_LINK,
    "link_expires_at": datetime(2026, 12, 9, 17, 0, tzinfo=UTC),
    # claims
    "claim_type": "damaged",
    "declared_value": "89.99",
    "currency": "GBP",
    "description": "The box arrived crushed on one corner; the lamp inside has a cracked base.",
    "deadline": "2026-11-27T09:30:00+00:00",
    "filed_at": "2026-11-26T15:45:00+00:00",
    "late": False,
    "days_waiting": 9,
    "missing": ["Police report (not a theft)"],
    # drivers and onboarding
    "driver_id": "driver-004",
    "driver_name": "Rowan Example",
    "depot_id": "depot-north",
    "depot_name": "North Depot (demo)",
    "depot_address": "1 Example Yard, London N1 0AA",
    "vehicle_type": "van",
    "planned_start_date": "2026-12-14",
    "document_kind": "proof_of_insurance",
    "expires_on": "2026-12-25",
    "days_left": 21,
    "items": ["driving_licence", "proof_of_insurance", "contractor_agreement"],
    "in_review": ["vehicle_registration"],
    "rejected_reason": "The photo is blurred: the expiry date cannot be read.",
    "abandon_after_days": 30,
    "review_after_hours": 48,
    # invoices and dunning
    "invoice_id": "INV-DEMO-SHOP-000042",
    "amount": "412.80",
    "balance": "212.80",
    "credit": "12.20",
    "days_overdue": 14,
    "due_on": "2026-12-01",
    "reference": "PO-7731",
    "hold_reason": "Invoice INV-DEMO-SHOP-000042 is 30 days overdue",
    "hold_lifted": False,
    "internal": False,
    "period_start": "2026-11-01",
    "period_end": "2026-11-30",
    "payment_terms_days": 30,
    "stop_count": 118,
    "subtotal": "344.00",
    "tax": "68.80",
    "failure_type": "NO_RATE_AGREEMENT",
    # reports (the reporting activity passes its lines' times already shown in the zone)
    "kind": "weekly",
    "period": "2026-W48",
    "start": "2026-11-23",
    "end": "2026-11-29",
    "console_url": CONSOLE_URL,
    "copy": False,
    "quiet": False,
    "headline": {"stops_attempted": 118, "first_attempt_success": "91.5%"},
    "figures": [
        {
            "name": "First-attempt success",
            "current": "91.5%",
            "previous": "89.0%",
            "trend": ["88.2%", "90.1%", "89.0%", "91.5%"],
        }
    ],
    "trend_periods": ["2026-W45", "2026-W48"],
    "charts": [],
    "sections": [
        {
            "title": "Failed deliveries",
            "count": 1,
            "more": 0,
            "lines": [
                {
                    "url": f"http://127.0.0.1:8000/console/cases/{'failed-delivery-SHP-2026-048213'}",
                    "case_id": "failed-delivery-SHP-2026-048213",
                    "case_type": "Failed delivery",
                    "status": "waiting on customer",
                    "resolution": None,
                    "at": "Wed 25 Nov 2026, 14:32 GMT",
                    "deadline": None,
                }
            ],
        }
    ],
}

ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
LONG_TOKEN = re.compile(r"\S{40,}")
WRAPS = re.compile(r"word-break:\s*break-(all|word)|overflow-wrap:\s*(anywhere|break-word)")


class _Html(HTMLParser):
    """The HTML's visible text, the long tokens in it that no element around them wraps,
    and its links."""

    VOID = {"br", "img", "meta", "hr", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.unwrapped: list[str] = []
        self.hrefs: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        style = values.get("style", "")
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])
        if tag in ("style", "title", "head"):
            self._skip += 1
        if tag not in self.VOID:
            self.stack.append((tag, style))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title", "head"):
            self._skip -= 1
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        wraps = any(WRAPS.search(style) for _, style in self.stack)
        self.unwrapped += [token for token in LONG_TOKEN.findall(data) if not wraps]


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


def _render(renderer: EmailRenderer, template: str) -> tuple[RenderedEmail, _Html]:
    email = renderer.render(template, dict(REALISTIC))
    parsed = _Html()
    parsed.feed(email.html)
    parsed.close()
    return email, parsed


def test_every_template_is_checked():
    assert len(TEMPLATES) >= 40, TEMPLATES


@pytest.mark.parametrize("template", TEMPLATES)
def test_nothing_is_wider_than_the_600px_column(renderer: EmailRenderer, template: str):
    email, html = _render(renderer, template)

    assert "max-width:600px;width:100%;" in email.html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in email.html
    # Every width set in pixels, in attributes, styles and Outlook's conditional comments.
    widths = [int(w) for w in re.findall(r"width\s*(?::|=\s*\")\s*(\d+)(?![\d%])", email.html)]
    assert 600 in widths and max(widths) <= 600, widths
    assert "nowrap" not in email.html and "min-width" not in email.html


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_long_address_is_where_it_can_wrap(renderer: EmailRenderer, template: str):
    email, html = _render(renderer, template)

    assert not html.unwrapped, f"unbreakable text in {template}: {html.unwrapped}"
    body = "".join(html.text)
    if SIGNED_LINK in body:  # the signed link shown as text, in a link that breaks anywhere
        assert re.search(
            r'<a href="[^"]+" style="[^"]*word-break:break-all;[^"]*">' + re.escape(SIGNED_LINK),
            email.html,
        )


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_message_has_a_plain_text_part_with_its_links(renderer: EmailRenderer, template: str):
    email, html = _render(renderer, template)

    assert email.text.startswith("Hello Jamie Example,")
    assert "<" not in re.sub(r"<[^>]*@[^>]*>", "", email.text), "HTML in the text part"
    own = email.text.split("\n--\n")[0].removeprefix("Hello Jamie Example,").strip()
    assert len(own) > 40, f"{template}: the text part says nothing: {own!r}"
    for href in html.hrefs:
        assert href in email.text, f"{template}: {href} is in the HTML only"


@pytest.mark.parametrize("template", TEMPLATES)
def test_times_are_shown_in_the_cases_zone_never_as_iso_text(
    renderer: EmailRenderer, template: str
):
    email, html = _render(renderer, template)
    shown = {"subject": email.subject, "text": email.text, "html": "".join(html.text)}

    for part, text in shown.items():
        assert not ISO_MOMENT.search(text), f"{template} {part}: {ISO_MOMENT.search(text)}"
        assert not re.search(r"\d{2}:\d{2} UTC", text), f"{template} {part}: a time in UTC"
        # Each time of day is followed by its zone ("08:00-12:00" is a delivery window).
        for moment in re.findall(r"(?<![\d:-])\d{2}:\d{2}(?![\d:-])[ \w]{0,4}", text):
            assert re.fullmatch(r"\d{2}:\d{2} (GMT|BST)", moment), f"{template}: {moment!r}"


def test_a_london_deadline_reads_in_london_time(renderer: EmailRenderer):
    context = dict(REALISTIC, respond_by="2026-07-01T09:00:00+00:00")

    email = renderer.render("failed_delivery/customer_notice", context)

    assert "Wed 1 Jul 2026, 10:00 BST" in email.text
    assert "Wed 1 Jul 2026, 10:00 BST" in email.html


def test_without_a_zone_times_stay_in_utc(renderer: EmailRenderer):
    context = {k: v for k, v in REALISTIC.items() if k != "timezone"}

    email = renderer.render("failed_delivery/customer_notice", context)

    assert "Sat 28 Nov 2026, 10:00 UTC" in email.text
