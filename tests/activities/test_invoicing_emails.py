"""The invoicing emails: the invoice to the billing contact and the failed-run notice to the
account manager render (HTML and text) with what the run passes, show money in the currency's
minor units, and keep to the phone-width layout."""

from __future__ import annotations

from typing import Any

import pytest

from activities.rendering import EmailRenderer
from tests.activities.email_checks import assert_phone_width, missing_files

TEMPLATES = ["invoicing/invoice_issued", "invoicing/run_failed"]

# What the messaging activity adds to every message.
BASE: dict[str, Any] = {
    "recipient_name": "Pat Payables",
    "case_id": "unpaid-invoice-INV-ACME-000001",
    "trace_url": "https://temporal.example/workflows/unpaid-invoice-INV-ACME-000001",
}
# What the run passes (workflows/invoicing_run.py, `_email`).
INVOICE: dict[str, Any] = {
    **BASE,
    "subject": "Invoice INV-ACME-000001",
    "invoice_id": "INV-ACME-000001",
    "client_id": "acme",
    "client_name": "Acme <Retail>",
    "currency": "GBP",
    "amount": "1234.5",
    "subtotal": "1028.75",
    "tax": "205.75",
    "issued_on": "2026-12-01",
    "due_on": "2026-12-31",
    "period_start": "2026-11-01",
    "period_end": "2026-11-30",
    "payment_terms_days": 30,
    "stop_count": 311,
}


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


def test_every_invoicing_template_has_its_three_files():
    assert missing_files(TEMPLATES) == []


def test_the_invoice_email_states_the_total_the_due_date_and_its_attachments(renderer):
    email = renderer.render("invoicing/invoice_issued", INVOICE)

    assert email.subject == "Invoice INV-ACME-000001: 1,234.50 GBP due Thu 31 Dec 2026"
    for body in (email.text, email.html):
        assert "311 stops from Sun 1 Nov 2026 to Mon 30 Nov 2026" in body
        assert "1,028.75 GBP" in body and "205.75 GBP" in body and "1,234.50 GBP" in body
        assert "INV-ACME-000001.pdf" in body and "INV-ACME-000001.csv" in body
    assert "Acme &lt;Retail&gt;" in email.html  # autoescaped
    own = assert_phone_width(email.html)
    assert "Thu 31 Dec 2026" in own


def test_a_yen_invoice_shows_no_minor_units(renderer):
    email = renderer.render(
        "invoicing/invoice_issued",
        {**INVOICE, "currency": "JPY", "amount": "150000", "subtotal": "136364", "tax": "13636"},
    )

    assert email.subject == "Invoice INV-ACME-000001: 150,000 JPY due Thu 31 Dec 2026"


def test_the_failed_run_notice_says_why_and_what_to_do(renderer):
    email = renderer.render(
        "invoicing/run_failed",
        {
            **BASE,
            "case_id": "invoicing-run-acme-2026-12-01T02:00:00Z",
            "subject": "Invoicing run for acme failed",
            "client_id": "acme",
            "failure_type": "InvoicePricingFailed",
            "reason": "cannot invoice acme for 2026-11-01 to 2026-11-30: zone 'Z' is not priced",
        },
    )

    assert email.subject == "Invoicing run for acme failed: no invoice was issued"
    for body in (email.text, email.html):
        assert "InvoicePricingFailed" in body and "zone 'Z' is not priced" in body.replace(
            "&#39;", "'"
        )
        assert "/clients/acme/invoicing/resume" in body
    assert_phone_width(email.html)
