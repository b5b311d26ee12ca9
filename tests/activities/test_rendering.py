"""The shipped email templates render with what the workflows pass, and without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.rendering import DEFAULT_TEMPLATE_DIR, EmailRenderer, failure_reason_text

TEMPLATES = sorted(
    path.relative_to(DEFAULT_TEMPLATE_DIR).as_posix().removesuffix(".subject.txt")
    for path in Path(DEFAULT_TEMPLATE_DIR).rglob("*.subject.txt")
)
ALWAYS = {"recipient_name": None, "case_id": "failed-delivery-SHP-1", "trace_url": "https://t/x"}
WORKFLOW_CONTEXT = ALWAYS | {
    "subject": "Failed delivery SHP-1",
    "shipment_id": "SHP-1",
    "attempt_number": 2,
    "reason": "access_problem",
    "respond_by": "2026-11-28T10:00:00+00:00",
    "summary": "Redelivery on Tue 24 Nov, 08:00-12:00",
    "delivery_date": "2026-11-24",
    "escalation_reason": "Customer did not answer within 48 hours",
    "link_url": "https://casedesk.example/r/abc.def",
}


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


def test_every_case_email_has_a_template():
    assert set(TEMPLATES) >= {
        "case/escalation",
        "failed_delivery/customer_notice",
        "failed_delivery/customer_reminder",
        "failed_delivery/dispatcher_escalation",
        "failed_delivery/redelivery_confirmation",
        "failed_delivery/client_redelivery_notice",
        "failed_delivery/return_to_sender_customer",
        "failed_delivery/return_to_sender_client",
    }


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_renders_with_only_the_values_every_message_has(renderer, template):
    email = renderer.render(template, dict(ALWAYS))

    assert email.subject and "\n" not in email.subject
    assert "automated message" in email.text and "automated message" in email.html


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_renders_with_the_workflow_context(renderer, template):
    email = renderer.render(template, dict(WORKFLOW_CONTEXT))

    assert "SHP-1" in email.subject + email.text
    assert "Hello there," in email.text


def test_customer_notice_explains_the_reason_and_the_deadline(renderer):
    email = renderer.render("failed_delivery/customer_notice", dict(WORKFLOW_CONTEXT))

    assert "The driver could not get to the door" in email.text
    assert "Sat 28 Nov 2026, 10:00 UTC" in email.text
    assert "https://casedesk.example/r/abc.def" in email.html


def test_unknown_failure_reason_codes_are_made_readable():
    assert failure_reason_text("not_home") == "Nobody was there to receive the parcel."
    assert failure_reason_text("attempts_exhausted") == "Attempts exhausted."
    assert failure_reason_text("Refused at the door") == "Refused at the door"


def test_escalation_says_why_the_case_was_escalated_not_the_failure_code(renderer):
    email = renderer.render("case/escalation", dict(WORKFLOW_CONTEXT))

    assert "Reason: Customer did not answer within 48 hours" in email.text
    assert "access_problem" not in email.text


def test_a_case_without_a_deadline_leaves_the_respond_by_line_out(renderer):
    email = renderer.render(
        "failed_delivery/customer_notice", WORKFLOW_CONTEXT | {"respond_by": None}
    )

    assert "Please choose by" not in email.text
    assert "None" not in email.text + email.html
