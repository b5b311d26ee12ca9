"""The unpaid-invoice emails: each renders (HTML and text) with what the workflow passes,
shows the money with its currency (the currency's own minor units), the due date and the days
overdue, and keeps to the phone-width layout."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from activities.rendering import EmailRenderer, RenderedEmail, money
from schemas.invoices import DEFAULT_LADDER
from tests.activities.email_checks import assert_phone_width, missing_files

LADDER = sorted({step.template for step in DEFAULT_LADDER})
OTHERS = [
    "dunning/promise_missed",
    "dunning/thank_you",
    "dunning/overpaid",
    "dunning/hold_set",
    "dunning/hold_lifted",
]
DUNNING_TEMPLATES = LADDER + OTHERS
INTERNAL = ["dunning/hold_set", "dunning/hold_lifted", "dunning/overpaid"]
"""Read by our own people (dispatchers, the account manager), not by the client."""

# What the messaging activity adds to every message, and what the workflow's `_context` gives.
CONTEXT: dict[str, Any] = {
    "recipient_name": "Pat Payables",
    "trace_url": "https://temporal.example/workflows/unpaid-invoice-inv-42",
    "case_id": "unpaid-invoice-inv-42",
    "subject": "Invoice inv-42 to acme",
    "invoice_id": "inv-42",
    "reference": "PO-<7>",
    "currency": "GBP",
    "amount": "1234.5",
    "balance": "734.50",
    "due_on": "2026-11-30",
    "days_overdue": 14,
}


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


def render(renderer: EmailRenderer, template: str, **changes: Any) -> RenderedEmail:
    context = CONTEXT | changes
    if template == "dunning/overpaid":
        context.setdefault("escalation_reason", "Invoice inv-42 overpaid: credit 10.00 GBP")
    return renderer.render(template, context)


def test_the_ladder_uses_only_these_templates():
    assert set(LADDER) == {
        "dunning/before_due",
        "dunning/due_today",
        "dunning/overdue",
        "dunning/final_notice",
        "dunning/dispatch_hold",
    }


def test_every_dunning_email_has_its_three_files():
    assert missing_files(DUNNING_TEMPLATES) == []


@pytest.mark.parametrize("template", DUNNING_TEMPLATES)
def test_renders_with_the_workflow_context_as_html_and_text(renderer, template):
    email = render(renderer, template)

    assert email.subject.strip() and "\n" not in email.subject
    assert "inv-42" in email.subject
    assert "Hello Pat Payables," in email.text
    assert "automated message" in email.text and "automated message" in email.html
    assert not re.search(r"</?[a-zA-Z][^>]*>", email.text.replace("PO-<7>", ""))
    assert "None" not in email.subject + email.text + email.html
    assert "\n\n\n" not in email.text
    # The money with its currency, the due date, the days overdue.
    assert "Invoice total: 1,234.50 GBP" in email.text
    assert "Balance due: 734.50 GBP" in email.text
    assert "<strong>734.50 GBP</strong>" in email.html
    assert "Due date: Mon 30 Nov 2026" in email.text
    assert "Mon 30 Nov 2026" in email.html
    assert "Days overdue: 14" in email.text
    assert "<td>14</td>" in email.html


@pytest.mark.parametrize("template", DUNNING_TEMPLATES)
def test_renders_with_only_the_values_every_message_has(renderer, template):
    email = renderer.render(
        template, {"recipient_name": None, "case_id": "unpaid-invoice-inv-42", "trace_url": "x"}
    )

    assert email.subject.strip() and "\n" not in email.subject
    assert "None" not in email.subject + email.text + email.html
    assert "\n\n\n" not in email.text


@pytest.mark.parametrize("template", DUNNING_TEMPLATES)
def test_before_the_due_date_no_days_overdue_are_shown(renderer, template):
    email = render(renderer, template, days_overdue=0, reference=None)

    assert "overdue:" not in email.text.lower()
    assert "Days overdue" not in email.html
    assert "reference" not in email.text.lower()


@pytest.mark.parametrize("template", DUNNING_TEMPLATES)
def test_html_keeps_to_the_phone_width_layout(renderer, template):
    assert_phone_width(render(renderer, template).html)


@pytest.mark.parametrize("template", DUNNING_TEMPLATES)
def test_untrusted_text_is_escaped_in_html(renderer, template):
    email = render(renderer, template)

    assert "PO-<7>" not in email.html
    assert "PO-&lt;7&gt;" in email.html
    whose = "client's" if template in INTERNAL else "your"
    assert f"({whose} reference PO-<7>)" in email.text


def test_jpy_has_no_minor_units(renderer):
    email = render(renderer, "dunning/overdue", currency="JPY", amount="150000", balance="75000")

    assert "Invoice total: 150,000 JPY" in email.text
    assert "Balance due: 75,000 JPY" in email.text
    assert ".00" not in email.text


def test_overdue_subject_says_how_late(renderer):
    assert render(renderer, "dunning/overdue").subject == (
        "Overdue: invoice inv-42 is 14 days past due"
    )
    assert render(renderer, "dunning/overdue", days_overdue=1).subject == (
        "Overdue: invoice inv-42 is 1 day past due"
    )


def test_before_due_names_the_due_date(renderer):
    email = render(renderer, "dunning/before_due", days_overdue=0)

    assert email.subject == "Reminder: invoice inv-42 is due on Mon 30 Nov 2026"
    assert "already paid" in email.text


def test_final_notice_warns_of_the_dispatch_hold(renderer):
    email = render(renderer, "dunning/final_notice", days_overdue=21)

    assert email.subject.startswith("Final notice")
    assert "put on hold" in email.text and "21 days overdue" in email.text


def test_dispatch_hold_says_dispatches_are_held_until_paid(renderer):
    email = render(renderer, "dunning/dispatch_hold", days_overdue=30)

    assert "on hold" in email.subject
    assert "new dispatches for your account are now on hold" in email.text
    assert "lifted as soon as the balance is paid in full" in email.text


def test_thank_you_says_nothing_more_is_due(renderer):
    email = render(renderer, "dunning/thank_you", balance="0.00")

    assert email.subject == "Thank you: invoice inv-42 is paid"
    assert "Nothing more is due" in email.text


def test_overpaid_tells_the_account_manager_about_the_credit(renderer):
    email = render(renderer, "dunning/overpaid")

    assert "overpaid" in email.subject
    assert "Reason: Invoice inv-42 overpaid: credit 10.00 GBP" in email.text
    assert 'href="https://temporal.example/workflows/unpaid-invoice-inv-42"' in email.html


def test_money_shows_the_currency_minor_units_and_never_rounds():
    assert money("1234.5", "GBP") == "1,234.50 GBP"
    assert money(Decimal("1500000"), "JPY") == "1,500,000 JPY"
    assert money("12.345", "BHD") == "12.345 BHD"
    assert money("1500.5", "JPY") == "1,500.5 JPY"
    assert money("not money", "EUR") == "not money EUR"


def test_the_thank_you_says_the_hold_is_lifted_and_the_credit_only_when_they_apply(renderer):
    plain = render(renderer, "dunning/thank_you", balance="0.00")
    assert "hold" not in plain.text.lower() and "credit" not in plain.text.lower()

    email = render(renderer, "dunning/thank_you", balance="0.00", credit="50", hold_lifted=True)

    assert "You paid 50.00 GBP more than was due" in email.text
    assert "Paid beyond the balance (credit): 50.00 GBP" in email.text
    assert "hold on new dispatches for your account is lifted" in email.text
    assert "<strong>50.00 GBP</strong>" in email.html


def test_the_dispatchers_hear_which_client_to_hold_and_when_to_resume(renderer):
    held = render(renderer, "dunning/hold_set", client_name="Acme <Parcels>", hold_reason="x")
    assert (
        held.subject == "[casedesk] Hold new dispatches for Acme <Parcels>: invoice inv-42 unpaid"
    )
    assert "Do not dispatch new shipments for Acme <Parcels>" in held.text
    assert "Acme &lt;Parcels&gt;" in held.html and "Acme <Parcels>" not in held.html

    lifted = render(
        renderer, "dunning/hold_lifted", client_name="Acme", hold_reason="released by admin:a"
    )
    assert lifted.subject == "[casedesk] Dispatches for Acme may resume (invoice inv-42)"
    assert "Why: released by admin:a" in lifted.text


@pytest.mark.parametrize("template", INTERNAL)
def test_our_own_people_read_the_clients_reference_as_the_clients(renderer, template):
    email = render(renderer, template)

    assert "Client's reference" in email.html
    assert "your reference" not in (email.text + email.html).lower()
