"""The driver onboarding and compliance emails: each renders (HTML and text) with what the
workflows pass, says the facts its reader needs, and keeps to the phone-width layout."""

from __future__ import annotations

import re
from typing import Any

import pytest

from activities.rendering import (
    EmailRenderer,
    RenderedEmail,
    accepted_types,
    document_description,
    document_label,
    vehicle_label,
)
from tests.activities.email_checks import assert_phone_width, missing_files

ONBOARDING = [
    "onboarding/welcome",
    "onboarding/reminder",
    "onboarding/document_rejected",
    "onboarding/coordinator_escalation",
    "onboarding/review_reminder",
    "onboarding/abandoned",
    "onboarding/first_day",
    "onboarding/dispatcher_ready",
]
COMPLIANCE = [
    "compliance/renewal_request",
    "compliance/renewal_reminder",
    "compliance/coordinator_warning",
    "compliance/suspended",
    "compliance/reinstated",
]
DRIVER_TEMPLATES = ONBOARDING + COMPLIANCE
LINK = "https://casedesk.example/r/eyJwIjoiZHJpdmVyIn0.c2lnbmF0dXJl"

# What the messaging activity adds to every message, and what the driver workflows pass.
EVERY_MESSAGE: dict[str, Any] = {
    "recipient_name": "Dee Driver",
    "trace_url": "https://temporal.example/workflows/driver-onboarding-drv-7",
}
ONBOARDING_CONTEXT: dict[str, Any] = EVERY_MESSAGE | {
    "case_id": "driver-onboarding-drv-7",
    "subject": "Onboarding driver drv-7 at ldn-1",
    "driver_id": "drv-7",
    "driver_name": "Dee Driver",
    "depot_id": "ldn-1",
    "vehicle_type": "cargo_bike",
    "planned_start_date": "2026-12-14",
    "items": ["driving_licence", "proof_of_insurance", "background_check_consent", "tax_form"],
    "document_kind": "driving_licence",
    "rejected_reason": "The photo is blurred: the <expiry date> cannot be read",
    "escalation_reason": "Documents still missing after 7 days",
    "in_review": ["contractor_agreement", "tax_form"],
    "link_url": LINK,
    "link_expires_at": "2026-12-31T23:00:00+00:00",
}
COMPLIANCE_CONTEXT: dict[str, Any] = EVERY_MESSAGE | {
    "case_id": "driver-compliance-drv-7",
    "subject": "Compliance watch for driver drv-7",
    "driver_id": "drv-7",
    "driver_name": "Dee Driver",
    "depot_id": "ldn-1",
    "document_kind": "proof_of_insurance",
    "expires_on": "2027-01-10",
    "link_url": LINK,
    "link_expires_at": "2027-01-10T00:00:00+00:00",
}


def context_for(template: str) -> dict[str, Any]:
    return dict(ONBOARDING_CONTEXT if template.startswith("onboarding/") else COMPLIANCE_CONTEXT)


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


def render(renderer: EmailRenderer, template: str, **changes: Any) -> RenderedEmail:
    return renderer.render(template, context_for(template) | changes)


# --- every template -------------------------------------------------------------------------


def test_every_driver_email_has_its_three_files():
    assert missing_files(DRIVER_TEMPLATES) == []


@pytest.mark.parametrize("template", DRIVER_TEMPLATES)
def test_renders_with_the_workflow_context_as_html_and_text(renderer, template):
    email = render(renderer, template)

    assert email.subject.strip() and "\n" not in email.subject
    assert "Hello Dee Driver," in email.text
    assert "automated message" in email.text and "automated message" in email.html
    assert not re.search(r"</?[a-zA-Z][^>]*>", email.text.replace("<expiry date>", ""))
    assert "None" not in email.subject + email.text + email.html
    assert "\n\n\n" not in email.text


@pytest.mark.parametrize("template", DRIVER_TEMPLATES)
def test_renders_with_only_the_values_every_message_has(renderer, template):
    email = renderer.render(
        template, {"recipient_name": None, "case_id": "driver-onboarding-drv-7", "trace_url": "x"}
    )

    assert email.subject.strip() and "\n" not in email.subject
    assert "None" not in email.subject + email.text + email.html
    assert "\n\n\n" not in email.text


@pytest.mark.parametrize("template", DRIVER_TEMPLATES)
def test_html_keeps_to_the_phone_width_layout(renderer, template):
    """The base layout is one 600px column that shrinks to the screen (`max-width:600px;
    width:100%`); a template's own HTML adds nothing with a fixed width that could push it
    wider, no unbreakable lines, no layout tables, and no text smaller than the footer's."""
    own = assert_phone_width(render(renderer, template).html)
    if LINK in own:  # the long signed link is shown where it can wrap
        assert "word-break:break-all" in own


@pytest.mark.parametrize("template", DRIVER_TEMPLATES)
def test_untrusted_text_is_escaped_in_html(renderer, template):
    email = render(renderer, template, driver_name="<b>Dee</b>")

    assert "<b>Dee</b>" not in email.html
    assert "<expiry date>" not in email.html


# --- onboarding: to the driver --------------------------------------------------------------


def test_welcome_lists_each_item_with_its_label_and_accepted_file_types(renderer):
    email = render(renderer, "onboarding/welcome")

    for label in ("Driving licence", "Proof of insurance", "Background check consent", "Tax form"):
        assert f"  - {label}\n" in email.text
        assert f"<strong>{label}</strong>" in email.html
    assert email.text.count("Accepted file types: PDF, PNG, JPEG, WEBP, HEIC.") == 4
    assert email.html.count("Accepted file types: PDF, PNG, JPEG, WEBP, HEIC.") == 4
    assert "vehicle registration" not in email.text.lower()


def test_welcome_points_to_the_attached_briefing_pack_and_the_upload_link(renderer):
    email = render(renderer, "onboarding/welcome")

    assert "briefing pack is attached" in email.text
    assert f"Upload them here: {LINK}" in email.text
    assert f'href="{LINK}"' in email.html
    assert "Mon 14 Dec 2026" in email.subject + email.text
    assert "cargo bike" in email.text and "ldn-1" in email.text
    assert "works until Thu 31 Dec 2026, 23:00 UTC" in email.text


def test_reminder_lists_what_is_still_requested_with_the_link(renderer):
    email = render(renderer, "onboarding/reminder", items=["tax_form"])

    assert email.subject == "Reminder: one document is still needed before your first route"
    assert "Still needed:\n  - Tax form\n" in email.text
    assert "Driving licence" not in email.text
    assert f"Upload them here: {LINK}" in email.text
    assert f'href="{LINK}"' in email.html


def test_rejection_names_the_item_and_the_reason_with_a_fresh_link(renderer):
    email = render(renderer, "onboarding/document_rejected")

    assert email.subject == "Please send your driving licence again"
    assert "We could not accept the driving licence" in email.text
    assert "Reason: The photo is blurred: the <expiry date> cannot be read" in email.text
    assert "The photo is blurred: the &lt;expiry date&gt; cannot be read" in email.html
    assert "Accepted file types: PDF, PNG, JPEG, WEBP, HEIC." in email.text
    assert f"Upload it here: {LINK}" in email.text
    assert "fresh link" in email.text and "fresh link" in email.html
    # The rest of what is still needed, without repeating the rejected item.
    assert "Also still needed:\n  - Proof of insurance\n" in email.text
    assert email.text.count("Driving licence") == 0


def test_first_day_says_when_where_and_what_to_bring(renderer):
    email = render(renderer, "onboarding/first_day")

    assert "Mon 14 Dec 2026" in email.subject
    assert "Your first day: Mon 14 Dec 2026" in email.text
    assert "depot ldn-1" in email.text
    assert "(you drive a cargo bike)" in email.text
    assert "  - A helmet and a lock.\n" in email.text
    assert '<li style="margin:0 0 6px 0;">A photo ID.</li>' in email.html


def test_first_day_for_a_van_asks_for_the_vehicle_papers(renderer):
    email = render(renderer, "onboarding/first_day", vehicle_type="van")

    assert "registration and insurance papers" in email.text
    assert "helmet" not in email.text


# --- onboarding: to the coordinator and the dispatcher --------------------------------------


def test_coordinator_escalation_says_why_and_what_is_missing(renderer):
    email = render(renderer, "onboarding/coordinator_escalation", driver_name="Dee <Driver>")

    assert "driver-onboarding-drv-7" in email.subject
    assert "Reason: Documents still missing after 7 days" in email.text
    assert "Still missing:\n  - Driving licence\n  - Proof of insurance\n" in email.text
    assert "Waiting for review:\n  - Contractor agreement\n  - Tax form\n" in email.text
    assert "Driver: Dee <Driver> (drv-7)" in email.text
    assert "Dee &lt;Driver&gt; (drv-7)" in email.html
    assert 'href="https://temporal.example/workflows/driver-onboarding-drv-7"' in email.html


def test_review_reminder_lists_the_documents_waiting_over_a_day(renderer):
    email = render(renderer, "onboarding/review_reminder")

    assert "over 24 h" in email.subject and "drv-7" in email.subject
    assert "waiting for review for more than 24 hours" in email.text
    assert "Waiting for review:\n  - Contractor agreement\n  - Tax form\n" in email.text
    assert "<strong>Contractor agreement</strong>" in email.html


def test_abandoned_tells_the_coordinator_the_link_no_longer_works(renderer):
    email = render(renderer, "onboarding/abandoned")

    assert "abandoned" in email.subject and "30 days" in email.subject
    assert "did not complete onboarding within 30 days" in email.text
    assert "upload link no longer works" in email.text
    assert "Still missing:\n  - Driving licence\n" in email.text
    assert LINK not in email.text + email.html


def test_dispatcher_is_told_from_when_the_driver_can_be_scheduled(renderer):
    email = render(renderer, "onboarding/dispatcher_ready")

    assert email.subject == "[casedesk] New driver drv-7 can be scheduled from Mon 14 Dec 2026"
    assert "You can schedule them on routes from Mon 14 Dec 2026, with a cargo bike." in (
        email.text
    )
    assert "Vehicle: cargo bike" in email.text and "Depot: ldn-1" in email.text
    assert "<strong>active</strong>" in email.html


# --- compliance -------------------------------------------------------------------------------


def test_renewal_request_names_the_document_its_expiry_and_the_link(renderer):
    email = render(renderer, "compliance/renewal_request")

    assert email.subject == (
        "Your proof of insurance expires on Sun 10 Jan 2027: please send the new one"
    )
    assert "your proof of insurance expires on Sun 10 Jan 2027" in email.text
    assert "Accepted file types: PDF, PNG, JPEG, WEBP, HEIC." in email.text
    assert f"Upload it here: {LINK}" in email.text
    assert f'href="{LINK}"' in email.html


def test_renewal_reminder_repeats_the_date_and_the_consequence(renderer):
    email = render(renderer, "compliance/renewal_reminder")

    assert email.subject == "Reminder: your proof of insurance expires on Sun 10 Jan 2027"
    assert "taken off routes" in email.text
    assert f"Upload it here: {LINK}" in email.text


def test_coordinator_is_warned_seven_days_before_expiry(renderer):
    email = render(renderer, "compliance/coordinator_warning")

    assert "drv-7" in email.subject and "Sun 10 Jan 2027" in email.subject
    assert "expires in 7 days, on Sun 10 Jan 2027" in email.text
    assert "no replacement has been approved yet" in email.text
    assert "Document: Proof of insurance" in email.text


def test_suspension_tells_the_dispatcher_the_driver_must_not_be_routed_now(renderer):
    email = render(renderer, "compliance/suspended")

    assert email.subject == "[casedesk] DO NOT ROUTE driver drv-7: proof of insurance expired"
    assert "EFFECTIVE NOW, THIS DRIVER MUST NOT BE ROUTED" in email.text
    assert "<strong>Effective now, this driver must not be routed.</strong>" in email.html
    assert "proof of insurance expired on Sun 10 Jan 2027" in email.text
    assert "suspended" in email.text


def test_reinstatement_tells_the_dispatcher_the_driver_can_be_routed_again(renderer):
    email = render(renderer, "compliance/reinstated", expires_on="2028-01-10")

    assert email.subject == "[casedesk] Driver drv-7 can be routed again"
    assert "replacement proof of insurance has been approved (valid until Mon 10 Jan 2028)" in (
        email.text
    )
    assert "can be routed again" in email.html


# --- the helpers templates use ----------------------------------------------------------------


def test_document_label_is_short_and_readable():
    assert document_label("driving_licence") == "Driving licence"
    assert document_label("right_to_work") == "Right to work"
    assert document_label("Something else") == "Something else"


def test_document_description_comes_from_the_document_kind():
    assert document_description("tax_form") == "The driver's completed tax form."
    assert document_description("unknown_kind") == "Unknown kind"


def test_accepted_types_follow_the_upload_rules():
    assert accepted_types("driving_licence") == "PDF, PNG, JPEG, WEBP, HEIC"
    assert accepted_types("damage_photos") == "PNG, JPEG, WEBP, HEIC"
    assert accepted_types("customer_attestation") == "PDF, PNG, JPEG, WEBP, HEIC, plain text"


def test_vehicle_label():
    assert vehicle_label("cargo_bike") == "cargo bike"
    assert vehicle_label("van") == "van"
