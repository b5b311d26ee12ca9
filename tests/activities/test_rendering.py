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
        "claims/evidence_request_driver",
        "claims/evidence_request_customer",
        "claims/evidence_reminder",
        "claims/claims_desk_escalation",
        "claims/claim_filed",
        "claims/decision_follow_up",
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


# --- the claim emails -----------------------------------------------------------------------

CLAIM_CONTEXT = ALWAYS | {
    "case_id": "damage-claim-SHP-1",
    "shipment_id": "SHP-1",
    "claim_type": "non_delivery",
    "declared_value": "129.90",
    "currency": "EUR",
    "deadline": "2026-11-23T09:00:00+00:00",
    "missing": ["Damage photos (driver)", "Customer attestation <signed>"],
    "filed_at": "2026-11-22T15:30:00+00:00",
    "late": False,
    "escalation_reason": "Evidence missing 12 hours before the filing deadline",
    "description": "Kettle <b>broken</b> in transit",
    "link_url": "https://casedesk.example/r/abc.def",
}


def test_driver_is_asked_for_damage_photos_with_the_upload_link(renderer):
    email = renderer.render("claims/evidence_request_driver", dict(CLAIM_CONTEXT))

    assert email.subject == "Damage photos needed for shipment SHP-1"
    assert "photos of the outside of the parcel" in email.text
    assert "Upload them here: https://casedesk.example/r/abc.def" in email.text
    assert 'href="https://casedesk.example/r/abc.def"' in email.html
    assert "Mon 23 Nov 2026, 09:00 UTC" in email.text


def test_customer_is_asked_for_the_attestation_and_untrusted_text_is_escaped(renderer):
    email = renderer.render("claims/evidence_request_customer", dict(CLAIM_CONTEXT))

    assert "signed statement" in email.text
    assert "(non delivery)" in email.text
    assert "Send it here: https://casedesk.example/r/abc.def" in email.text
    assert "What was reported: Kettle <b>broken</b> in transit" in email.text
    assert "Kettle &lt;b&gt;broken&lt;/b&gt; in transit" in email.html


def test_reminder_lists_what_is_still_owed(renderer):
    email = renderer.render("claims/evidence_reminder", dict(CLAIM_CONTEXT))

    assert "Still missing:\n  - Damage photos (driver)\n  - Customer attestation <signed>" in (
        email.text
    )
    assert "<li>Customer attestation &lt;signed&gt;</li>" in email.html
    assert "SHP-1" in email.subject


def test_reminder_without_a_link_or_missing_items_leaves_them_out(renderer):
    email = renderer.render(
        "claims/evidence_reminder", CLAIM_CONTEXT | {"link_url": None, "missing": []}
    )

    assert "Still missing" not in email.text and "Send it here" not in email.text
    assert "None" not in email.text + email.html


def test_claims_desk_escalation_says_why_what_is_missing_and_the_deadline(renderer):
    email = renderer.render("claims/claims_desk_escalation", dict(CLAIM_CONTEXT))

    assert email.subject == "[casedesk] Claim damage-claim-SHP-1 at risk (shipment SHP-1)"
    assert "Reason: Evidence missing 12 hours before the filing deadline" in email.text
    assert "  - Damage photos (driver)" in email.text
    assert "it must be filed by Mon 23 Nov 2026, 09:00 UTC" in email.text
    assert "Declared value: 129.90 EUR" in email.text
    assert "https://t/x" in email.html


def test_filed_claim_summarises_it_for_the_claims_contact(renderer):
    email = renderer.render("claims/claim_filed", dict(CLAIM_CONTEXT))

    assert email.subject == "Claim for shipment SHP-1 (non delivery), case damage-claim-SHP-1"
    assert "claim package" in email.text
    assert "Filed: Sun 22 Nov 2026, 15:30 UTC" in email.text
    assert "Claim type: non delivery" in email.text
    assert "after the filing deadline" not in email.text


def test_late_claim_says_so_in_subject_and_body(renderer):
    email = renderer.render("claims/claim_filed", CLAIM_CONTEXT | {"late": True})

    assert email.subject.startswith("Late claim for shipment SHP-1")
    assert "filed after the filing deadline" in email.text
    assert "filed after the filing deadline" in email.html


def test_decision_follow_up_says_since_when_and_how_long(renderer):
    email = renderer.render("claims/decision_follow_up", CLAIM_CONTEXT | {"days_waiting": 7})

    assert "damage-claim-SHP-1" in email.subject
    assert "Filed: Sun 22 Nov 2026, 15:30 UTC" in email.text
    assert "Waiting: 7 days" in email.text
    assert "approved" in email.text and "denied" in email.text


def test_decision_follow_up_without_days_waiting_leaves_the_line_out(renderer):
    email = renderer.render("claims/decision_follow_up", dict(CLAIM_CONTEXT))

    assert "Waiting:" not in email.text
