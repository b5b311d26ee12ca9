"""A driver's upload page behind a `driver-upload` link: the onboarding documents (from the
welcome, a reminder or a rejection) or a replacement for one about to expire (the compliance
watch's renewal request). The form and the upload are `api/upload_page.py`'s.

The form offers what the link asked for that the case still requests, each with the file
types it accepts. Once the case has closed (activated, abandoned, withdrawn, the driver
offboarded) the link no longer works: a 410 page saying why."""

from __future__ import annotations

from typing import Any

from api.casework import details_as
from api.pages import PageError
from api.upload_page import DocumentsPage, label, link_kinds
from core.security import LinkClaims
from schemas.cases import CaseState
from schemas.documents import DocumentKind
from schemas.enums import CaseType, Resolution
from schemas.onboarding import ChecklistItem, ComplianceDetails, ItemStatus, OnboardingDetails

_ITEM_STATES = {
    ItemStatus.REQUESTED: "still needed",
    ItemStatus.IN_REVIEW: "received, being checked",
    ItemStatus.APPROVED: "approved",
    ItemStatus.REJECTED: "still needed",
}
_CLOSED = {
    Resolution.ACTIVATED: "Your onboarding is complete: every document has been approved, so "
    "there is nothing more to send here.",
    Resolution.ABANDONED: "The time to send your onboarding documents has passed. Please "
    "contact your depot if you still want to drive with us.",
    Resolution.WITHDRAWN: "Your onboarding has been stopped. Please contact your depot if you "
    "think this is a mistake.",
    Resolution.OFFBOARDED: "You no longer drive with us, so we are not collecting documents "
    "from you.",
}


def driver_items(case_type: CaseType, case_id: str, details: dict[str, Any]) -> list[ChecklistItem]:
    """The items a driver case takes documents for: the onboarding checklist, or the
    renewals the compliance watch asked for (409 for details of neither)."""
    if case_type is CaseType.DRIVER_ONBOARDING:
        return details_as(OnboardingDetails, case_id, details).checklist
    return details_as(ComplianceDetails, case_id, details).renewals


def _items(state: CaseState) -> list[ChecklistItem]:
    return driver_items(state.case_type, state.case_id, state.details)


class DriverPage(DocumentsPage):
    form_template = "driver_upload_form.html"
    done_template = "driver_upload_done.html"
    stopped = (
        "We are not collecting these documents now",
        "Please use the link in our latest email, or contact your depot.",
    )

    def refused(self, state: CaseState, claims: LinkClaims) -> PageError | None:
        if state.case_type not in (CaseType.DRIVER_ONBOARDING, CaseType.DRIVER_COMPLIANCE):
            return PageError(404, "We could not find this page", "Please contact your depot.")
        if state.status.is_terminal:
            resolution = state.resolution
            message = _CLOSED.get(resolution) if resolution else None
            closed = message or "We are no longer collecting documents through this link."
            return PageError(410, "This link no longer works", closed, state)
        if "documents" in state.allowed_actions and self.offered(state, claims):
            return None
        asked = set(link_kinds(claims))
        checking = [item for item in _items(state) if item.status is ItemStatus.IN_REVIEW]
        if any(item.kind in asked for item in checking):
            message = (
                "We have received what this link asked for and are checking it. We will "
                "email you if anything needs to be sent again."
            )
            return PageError(409, "Thank you: we have your documents", message, state)
        message = (
            "Everything this link asked for has been received. If we need anything else, we "
            "will email you a new link."
        )
        return PageError(409, "Nothing more to send here", message, state)

    def offered(self, state: CaseState, claims: LinkClaims) -> list[DocumentKind]:
        """What the link asked for that the case still requests, in the checklist's order."""
        asked = set(link_kinds(claims))
        return [
            item.kind
            for item in _items(state)
            if item.status is ItemStatus.REQUESTED and item.kind in asked
        ]

    def context(self, state: CaseState, kinds: list[DocumentKind]) -> dict[str, Any]:
        renewing = state.case_type is CaseType.DRIVER_COMPLIANCE
        deadline = state.deadline_at
        items = [
            {
                "label": label(item.kind),
                "state": _ITEM_STATES[item.status],
                "reason": item.rejected_reason if item.status is ItemStatus.REQUESTED else None,
                "expires_on": f"{item.expires_on:%d %B %Y}" if item.expires_on else None,
            }
            for item in _items(state)
        ]
        return {
            "heading": "Renew your documents" if renewing else "Your onboarding documents",
            "lead": "A document of yours expires soon: please send us a valid replacement."
            if renewing
            else "Please send us the documents we need before your first route.",
            "send_by": f"{deadline:%a %d %b %Y}" if deadline else None,
            "status_text": state.status.description,
            "items_heading": "What we asked for" if renewing else "Your documents",
            "items": items,
            "still_wanted": bool(kinds),
        }


DRIVER_PAGE = DriverPage()
