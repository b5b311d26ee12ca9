"""The claim's upload page behind a `claim-upload` link (`/r/{token}`, dispatched from
`api/routes/customer.py`): the driver or the customer sends the documents the case asked them
for. Server-rendered, multipart, no JavaScript.

The link names the case, the kinds of document asked for and the gathering round it was sent
in. It does not say who it was sent to, so documents added through it are by `link`. The file
gets the same checks as an ops upload (size before reading, content by its bytes, the file name
only as a sanitized label); every refusal re-renders the form with what went wrong."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from api.casework import query_state, run_update
from api.deps import CaseRef, Timeouts
from api.errors import Problem
from api.pages import PageError, notice, page_for, render
from api.uploads import UploadRejected, UploadTooLarge, read_upload_form, store_upload
from core.documents import DocumentStore
from core.security import LinkClaims
from core.settings import Settings
from schemas import contracts
from schemas.cases import CaseState
from schemas.claims import AddDocumentInput
from schemas.documents import DocumentKind
from schemas.enums import CaseStatus, CaseType

BY = "link"

LABELS = {
    DocumentKind.ATTEMPT_RECORD: "Delivery attempt record",
    DocumentKind.PROOF_OF_DELIVERY: "Proof of delivery",
    DocumentKind.DAMAGE_PHOTOS: "Photos of the damage",
    DocumentKind.CUSTOMER_ATTESTATION: "Statement of what was received",
    DocumentKind.PROOF_OF_VALUE: "Proof of value (invoice or receipt)",
    DocumentKind.POLICE_REPORT: "Police report",
    DocumentKind.INSURANCE_PAPERS: "Insurance papers",
    DocumentKind.OTHER: "Other document",
}


def _link_kinds(claims: LinkClaims) -> list[DocumentKind]:
    raw = claims.data.get("kinds")
    try:
        kinds = [DocumentKind(value) for value in raw] if isinstance(raw, list) else []
    except ValueError:
        kinds = []
    if not kinds:
        raise PageError(400, "This link is not valid", "This link is not valid.")
    return list(dict.fromkeys(kinds))


def _not_gathering(state: CaseState, claims: LinkClaims) -> PageError | None:
    """Why the form is not shown, or None when the claim takes documents from this link."""
    if state.case_type is not CaseType.DAMAGE_CLAIM:
        return PageError(404, "We could not find this claim", "Please contact the sender.")
    if state.status.is_terminal:
        outcome = state.resolution.description if state.resolution else state.status.description
        return PageError(409, "This claim is closed", outcome, state)
    sent_in = claims.data.get("round")
    current = state.details.get("round")
    if isinstance(sent_in, int) and isinstance(current, int) and sent_in < current:
        message = (
            "We have asked for more documents since this link was sent: please use the link "
            "in our latest email."
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


def _checklist(state: CaseState) -> list[dict[str, Any]]:
    items = []
    checklist = state.details.get("checklist") or {}
    for value, status in checklist.items() if isinstance(checklist, dict) else ():
        try:
            kind = DocumentKind(value)
        except ValueError:
            continue
        items.append({"label": LABELS[kind], "present": status == "present"})
    return items


def _size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):.0f} MB"
    return f"{max(1, limit // 1024)} KB"


def _form(
    request: Request,
    settings: Settings,
    state: CaseState,
    kinds: list[DocumentKind],
    *,
    selected: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "shipment_id": state.business_key,
        "status_text": state.status.description,
        "send_by": f"{state.deadline_at:%a %d %b %Y, %H:%M} UTC" if state.deadline_at else None,
        "kinds": [{"value": k.value, "label": LABELS[k], "hint": k.description} for k in kinds],
        "selected": selected,
        "checklist": _checklist(state),
        "max_size": _size(settings.max_upload_bytes),
        "text_ok": DocumentKind.CUSTOMER_ATTESTATION in kinds,
        "error": error,
    }
    response: HTMLResponse = render(request, "claim_upload_form.html", context, status)
    return response


def upload_page(
    request: Request, settings: Settings, state: CaseState, claims: LinkClaims
) -> HTMLResponse:
    """GET: the form, or a page saying why documents are not taken (200: nothing failed)."""
    kinds = _link_kinds(claims)
    refused = _not_gathering(state, claims)
    if refused is not None:
        refused.status = 200 if refused.status == 409 else refused.status
        return notice(request, refused)
    return _form(request, settings, state, kinds)


async def upload_answer(
    request: Request,
    settings: Settings,
    state: CaseState,
    claims: LinkClaims,
    case: CaseRef,
    store: DocumentStore,
    timeouts: Timeouts,
) -> HTMLResponse:
    """POST: store the file and add it to the case; the form again with what went wrong."""
    kinds = _link_kinds(claims)
    refused = _not_gathering(state, claims)
    if refused is not None:
        return notice(request, refused)
    try:
        form = await read_upload_form(request, max_bytes=settings.max_upload_bytes)
    except UploadTooLarge:
        message = f"This file is too large: files may be up to {_size(settings.max_upload_bytes)}."
        return _form(request, settings, state, kinds, error=message, status=413)
    except HTTPException:  # a malformed multipart body
        message = "We could not read your upload. Please choose the file and send it again."
        return _form(request, settings, state, kinds, error=message, status=400)
    selected = form.fields.get("kind")

    def again(message: str) -> HTMLResponse:
        return _form(request, settings, state, kinds, selected=selected, error=message, status=422)

    kind = next((k for k in kinds if k.value == selected), None)
    if kind is None:
        return again("Please choose which document you are sending.")
    if not form.data:
        return again("Please choose a file to send.")
    try:
        ref = await store_upload(store, form.data, kind=kind, filename=form.filename)
    except UploadRejected as err:
        return again(f"We cannot accept this file: {err.reason}.")
    # Should the case refuse the document now (filed meanwhile), the stored file stays in the
    # store unreferenced: an orphan, harmless.
    try:
        after = await run_update(
            case,
            contracts.ADD_DOCUMENT,
            AddDocumentInput(document=ref, by=BY),
            timeouts,
            refresh=False,
        )
    except Problem as problem:
        if problem.status == 422:
            return again(f"Please check your upload: {problem.detail}")
        if problem.status == 409:
            fresh = await query_state(case.handle, timeouts)
            refused = (_not_gathering(fresh, claims) if fresh else None) or PageError(
                409, "This claim is no longer collecting documents", "Thank you."
            )
            refused.status = 409
            return notice(request, refused)
        if problem.status == 503:
            message = "We could not save your document just now. Please try again in a few minutes."
            return notice(request, PageError(503, "Please try again shortly", message))
        return notice(request, page_for(problem))
    context = {
        "shipment_id": after.business_key,
        "received": LABELS[kind],
        "checklist": _checklist(after),
        "again_url": request.url.path,
    }
    response: HTMLResponse = render(request, "claim_upload_done.html", context)
    return response
