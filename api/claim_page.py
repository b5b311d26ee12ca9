"""The claim's upload page behind a `claim-upload` link: the driver or the customer sends the
documents the claim asked them for (the form and the upload are `api/upload_page.py`'s).

The link names the case, the kinds of document asked for and the gathering round it was sent
in; a link from an earlier round is out of date once the claim asked for more. The kinds say
whom the link was sent to (`EVIDENCE_SOURCES`: the driver owes the photos, the customer the
statement and the proof of value): the page shows that person's items of the checklist only,
and takes only the kinds the link names. Several files go at once; a customer's link also
offers a box to type the statement in."""

from __future__ import annotations

from typing import Any

from api.pages import PageError
from api.upload_page import DocumentsPage, label
from core.security import LinkClaims
from schemas.cases import CaseState
from schemas.documents import EVIDENCE_SOURCES, DocumentKind
from schemas.enums import CaseStatus, CaseType

MAX_FILES = 10
"""Files one send may carry (a driver's photos of the box, the packaging, each item)."""


def audience(kinds: list[DocumentKind]) -> set[str]:
    """Whom a link asking for `kinds` was sent to: "driver", "customer" (or both)."""
    return {EVIDENCE_SOURCES[kind] for kind in kinds}


def _checklist(state: CaseState, owed_by: set[str]) -> list[dict[str, Any]]:
    """The checklist items `owed_by` owes, and whether each is in."""
    items = []
    checklist = state.details.get("checklist") or {}
    for value, status in checklist.items() if isinstance(checklist, dict) else ():
        try:
            kind = DocumentKind(value)
        except ValueError:
            continue
        if EVIDENCE_SOURCES[kind] in owed_by:
            items.append({"label": label(kind), "present": status == "present"})
    return items


class ClaimPage(DocumentsPage):
    form_template = "claim_upload_form.html"
    done_template = "claim_upload_done.html"
    stopped = ("This claim is no longer collecting documents", "Thank you.")
    max_files = MAX_FILES

    def takes_statement(self, kinds: list[DocumentKind]) -> bool:
        return DocumentKind.CUSTOMER_ATTESTATION in kinds

    def refused(self, state: CaseState, claims: LinkClaims) -> PageError | None:
        if state.case_type is not CaseType.DAMAGE_CLAIM:
            return PageError(404, "We could not find this claim", "Please contact the sender.")
        if state.status.is_terminal:
            resolution = state.resolution
            outcome = resolution.description if resolution else state.status.description
            return PageError(409, "This claim is closed", outcome, state)
        sent_in = claims.data.get("round")
        current = state.details.get("round")
        if isinstance(sent_in, int) and isinstance(current, int) and sent_in < current:
            message = (
                "We have asked for more documents since this link was sent: please use the "
                "link in our latest email."
            )
            return PageError(409, "This link is out of date", message, state)
        if "documents" in state.allowed_actions:
            return None
        if state.status is CaseStatus.AWAITING_DECISION:
            message = (
                "The claim has been filed with the documents we had, so we are no longer "
                "collecting documents for it. Thank you."
            )
            return PageError(409, "This claim has been filed", message, state)
        message = "We are still processing this claim. Please try again in a minute."
        return PageError(409, "Please try again shortly", message, state)

    def context(self, state: CaseState, kinds: list[DocumentKind]) -> dict[str, Any]:
        deadline = state.deadline_at
        return {
            "shipment_id": state.business_key,
            "status_text": state.status.description,
            "send_by": f"{deadline:%a %d %b %Y, %H:%M} UTC" if deadline else None,
            "checklist": _checklist(state, audience(kinds)),
            "text_ok": DocumentKind.CUSTOMER_ATTESTATION in kinds,
            "for_driver": audience(kinds) == {"driver"},
        }


CLAIM_PAGE = ClaimPage()
