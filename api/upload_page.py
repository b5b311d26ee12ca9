"""The upload page behind a signed link (`/r/{token}`, dispatched from
`api/routes/customer.py`): whoever the case asked for documents (a claim's driver or
customer, a new driver, a driver renewing a document) sends them here. Server-rendered,
multipart, no JavaScript.

What is shared lives here: the kinds a link names, the form, the upload (the same checks as
an ops upload: size before reading, content by its bytes, the file name only as a sanitized
label) and what every refusal shows. What a purpose's page says (whether its case takes
documents now, its checklist, its wording) is a `DocumentsPage` (`api/claim_page.py`,
`api/driver_page.py`). The link does not say who it was sent to, so documents added through
it are by `link`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from api.casework import held_documents, query_state, run_update
from api.deps import CaseRef, Timeouts
from api.errors import Problem
from api.pages import PageError, notice, page_for, render
from api.uploads import UploadRejected, UploadTooLarge, read_upload_form, store_upload
from core.documents import DocumentStore
from core.security import LinkClaims
from core.settings import Settings
from core.uploads import ALLOWED_CONTENT_TYPES, EXTENSIONS, TEXT
from schemas import contracts
from schemas.cases import CaseState
from schemas.claims import AddDocumentInput
from schemas.documents import DocumentKind

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


def label(kind: DocumentKind) -> str:
    """A document kind as people read it: "Photos of the damage", "Driving licence"."""
    return LABELS.get(kind) or kind.value.replace("_", " ").capitalize()


def file_types(kind: DocumentKind) -> str:
    """The file types an upload of `kind` may be, as people know them: "PDF, PNG, JPG, …"."""
    allowed = ALLOWED_CONTENT_TYPES[kind]
    names = (
        "plain text" if t == TEXT else ext.upper() for t, ext in EXTENSIONS.items() if t in allowed
    )
    return ", ".join(names)


def accept(kinds: list[DocumentKind]) -> str:
    """The file input's `accept`: the extensions and the types any of `kinds` takes."""
    allowed: set[str] = set().union(*(ALLOWED_CONTENT_TYPES[kind] for kind in kinds))
    extensions = [f".{ext}" for t, ext in EXTENSIONS.items() if t in allowed]
    return ",".join([*extensions, *sorted(allowed)])


def link_kinds(claims: LinkClaims) -> list[DocumentKind]:
    """The kinds the link asks for (its `kinds`); a link naming none is not valid."""
    raw = claims.data.get("kinds")
    try:
        kinds = [DocumentKind(value) for value in raw] if isinstance(raw, list) else []
    except ValueError:
        kinds = []
    if not kinds:
        raise PageError(400, "This link is not valid", "This link is not valid.")
    return list(dict.fromkeys(kinds))


def size_text(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):.0f} MB"
    return f"{max(1, limit // 1024)} KB"


class DocumentsPage(ABC):
    """What one link purpose's upload page says and when it takes documents."""

    form_template: str
    done_template: str
    stopped: tuple[str, str]
    """The heading and message when the case refuses the upload and says nothing more."""

    @abstractmethod
    def refused(self, state: CaseState, claims: LinkClaims) -> PageError | None:
        """Why the form is not shown, or None when the case takes documents from this link."""

    def offered(self, state: CaseState, claims: LinkClaims) -> list[DocumentKind]:
        """The kinds the form offers (by default, every kind the link names)."""
        return link_kinds(claims)

    @abstractmethod
    def context(self, state: CaseState, kinds: list[DocumentKind]) -> dict[str, Any]:
        """The page's own facts (its case, its checklist), for both templates."""


def _form(
    request: Request,
    settings: Settings,
    page: DocumentsPage,
    state: CaseState,
    kinds: list[DocumentKind],
    *,
    selected: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        **page.context(state, kinds),
        "kinds": [
            {"value": k.value, "label": label(k), "hint": k.description, "types": file_types(k)}
            for k in kinds
        ],
        "accept": accept(kinds),
        "selected": selected,
        "max_size": size_text(settings.max_upload_bytes),
        "error": error,
    }
    response: HTMLResponse = render(request, page.form_template, context, status)
    return response


def upload_page(
    request: Request,
    settings: Settings,
    state: CaseState,
    claims: LinkClaims,
    page: DocumentsPage,
) -> HTMLResponse:
    """GET: the form, or a page saying why documents are not taken (a refusal of the moment
    is a 200 page: nothing failed; a dead link keeps its status)."""
    link_kinds(claims)
    refused = page.refused(state, claims)
    if refused is not None:
        refused.status = 200 if refused.status == 409 else refused.status
        return notice(request, refused)
    return _form(request, settings, page, state, page.offered(state, claims))


async def upload_answer(
    request: Request,
    settings: Settings,
    state: CaseState,
    claims: LinkClaims,
    case: CaseRef,
    store: DocumentStore,
    timeouts: Timeouts,
    page: DocumentsPage,
) -> HTMLResponse:
    """POST: store the file and add it to the case; the form again with what went wrong."""
    link_kinds(claims)
    refused = page.refused(state, claims)
    if refused is not None:
        return notice(request, refused)
    kinds = page.offered(state, claims)
    try:
        form = await read_upload_form(request, max_bytes=settings.max_upload_bytes)
    except UploadTooLarge:
        limit = size_text(settings.max_upload_bytes)
        message = f"This file is too large: files may be up to {limit}."
        return _form(request, settings, page, state, kinds, error=message, status=413)
    except HTTPException:  # a malformed multipart body
        message = "We could not read your upload. Please choose the file and send it again."
        return _form(request, settings, page, state, kinds, error=message, status=400)
    selected = form.fields.get("kind")

    def again(message: str) -> HTMLResponse:
        return _form(
            request, settings, page, state, kinds, selected=selected, error=message, status=422
        )

    kind = next((k for k in kinds if k.value == selected), None)
    if kind is None:
        return again("Please choose which document you are sending.")
    if not form.data:
        return again("Please choose a file to send.")
    try:
        ref = await store_upload(
            store,
            form.data,
            kind=kind,
            filename=form.filename,
            max_bytes=settings.max_upload_bytes,
            held=held_documents(state.details),
        )
    except UploadRejected as err:
        return again(f"We cannot accept this file: {err.reason}.")
    if ref is None:  # the same file again (a resent form, a replayed link): stored once
        message = f"We already have this file as {label(kind).lower()}; nothing was added."
        return _form(request, settings, page, state, kinds, selected=selected, error=message)
    # Should the case refuse the document now (filed or closed meanwhile), the stored file
    # stays in the store unreferenced: an orphan, harmless.
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
            refused = (page.refused(fresh, claims) if fresh else None) or PageError(
                409, *page.stopped
            )
            refused.status = 409 if refused.status == 200 else refused.status
            return notice(request, refused)
        if problem.status == 503:
            message = "We could not save your document just now. Please try again in a few minutes."
            return notice(request, PageError(503, "Please try again shortly", message))
        return notice(request, page_for(problem))
    context = {
        **page.context(after, page.offered(after, claims)),
        "received": label(kind),
        "again_url": request.url.path,
    }
    response: HTMLResponse = render(request, page.done_template, context)
    return response
