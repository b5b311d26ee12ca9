"""A case's documents, for every case type whose registry entry has them: upload one
(`POST /cases/{id}/documents`, multipart), review one (`POST /cases/{id}/documents/
{document_id}/review`) and download what the case holds (`GET /cases/{id}/documents/
{document_id}`).

Which case takes what comes from the registry: the upload needs the type's `documents` action
and takes the kinds it declares (`CaseTypeSpec.document_kinds`); the case's own validator then
decides what it takes now (a claim while gathering, a driver case the items it still asks
for: another kind is a 422 naming `kind`). Documents are stored before the workflow hears of
them; the workflow keeps only the reference (id + checksum)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.case_models import CaseDetail
from api.casework import (
    CaseReader,
    Reader,
    held_documents,
    listed_documents,
    query_state,
    require_action,
    require_state,
    run_update,
)
from api.deps import CaseRef, CurrentCase, DocumentsDep, OpsKey, ViewerKey
from api.errors import Problem, invalid, temporal_unreachable
from api.routes.cases import CaseAction, acting
from api.uploads import (
    UploadRejected,
    UploadTooLarge,
    read_upload_form,
    store_upload,
    too_large_problem,
)
from core.documents import DocumentNotFound, DocumentStore
from core.uploads import ZIP, ZIP_MAGIC, detect_content_type, download_name
from schemas import contracts
from schemas.case_types import CaseTypeSpec
from schemas.claims import AddDocumentInput
from schemas.documents import DocumentKind, DocumentRef
from schemas.onboarding import ReviewDocumentInput
from schemas.requests import ReviewIn
from schemas.tables import ApiKey, Case

log = logging.getLogger("casedesk.api")

router = APIRouter(prefix="/cases", tags=["documents"])

# --- uploads ------------------------------------------------------------------------------

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["kind", "file"],
                    "properties": {
                        "kind": {
                            "type": "string",
                            "enum": [k.value for k in DocumentKind],
                            "description": "The checklist item this document is (one of "
                            "the case type's document kinds, see `GET /case-types`).",
                        },
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "A PDF or an image (PNG, JPEG, WEBP, HEIC); an "
                            "attestation may be plain text. Checked by its bytes; the file "
                            "name is kept only as a sanitized label.",
                        },
                    },
                }
            }
        },
    }
}


def _kind(raw: str | None, spec: CaseTypeSpec) -> DocumentKind:
    """The posted kind, when it is one the case type takes (422 naming `kind` otherwise)."""
    if not raw:
        raise invalid("kind", "field required")
    try:
        kind = DocumentKind(raw)
    except ValueError:
        accepted = ", ".join(k.value for k in spec.document_kinds)
        raise invalid("kind", f"unknown document kind '{raw}' (one of: {accepted})") from None
    if kind not in spec.document_kinds:
        accepted = ", ".join(k.value for k in spec.document_kinds)
        message = f"a {spec.case_type.value} case takes no '{raw}' (one of: {accepted})"
        raise invalid("kind", message)
    return kind


FieldCheck = Callable[[Mapping[str, str]], None]


async def add_uploaded_document(
    request: Request,
    *,
    case: CaseRef,
    reader: CaseReader,
    store: DocumentStore,
    key: ApiKey,
    check_fields: FieldCheck | None = None,
) -> CaseDetail:
    """Store the multipart upload (`kind`, `file`) on `request` and add it to the case: the
    one path of the JSON route and the console, for every case type with documents.

    409 unless the case type has documents and the case takes them now, and 413 beyond the
    upload limit, both before the body is read; then `check_fields` sees the form's text
    fields before anything is stored (the console checks its CSRF token there, since the
    token travels in the body); 422 for a missing kind or one the type does not take, a
    missing file, bytes the kind does not accept, or (the case's validator) an item the case
    is not asking for."""
    spec = require_action(case.case_id, "documents")
    # Refuse before reading or storing anything when the case takes no documents now.
    state = await require_state(case.handle, reader.timeouts)
    if "documents" not in state.allowed_actions:
        raise Problem(
            409,
            f"documents cannot be added now: the {spec.case_type.value} case is "
            f"{state.status.value}",
            slug="action-not-allowed",
        )
    max_bytes = reader.settings.max_upload_bytes
    try:
        form = await read_upload_form(request, max_bytes=max_bytes)
    except UploadTooLarge as err:
        raise too_large_problem(err) from None
    if check_fields is not None:
        check_fields(form.fields)
    kind = _kind(form.fields.get("kind"), spec)
    if form.data is None:
        raise invalid("file", "field required: attach the document as `file`")
    try:
        ref = await store_upload(
            store,
            form.data,
            kind=kind,
            filename=form.filename,
            max_bytes=max_bytes,
            held=held_documents(state.details),
        )
    except UploadRejected as err:
        raise invalid(err.field, err.reason) from None
    if ref is None:  # the case holds this very document for this item: stored once
        return await reader.detail(case, state)
    # Should the case refuse it now after all (filed meanwhile, an item not asked for), the
    # stored file stays in the store unreferenced: an orphan, harmless, and cheaper than a
    # second round trip.
    upload = AddDocumentInput(document=ref, by=f"ops:{key.name}")
    state = await run_update(case, contracts.ADD_DOCUMENT, upload, reader.timeouts)
    return await reader.detail(case, state)


@router.post(
    "/{case_id}/documents",
    summary="Add a document to a case (multipart: kind, file)",
    description="For the case types with documents (claims, driver onboarding and the "
    "compliance watch). Refused with 409 unless the case takes documents now, with 413 "
    "beyond the upload limit (before the body is read) and with 422 for a kind the case "
    "does not take (a driver case takes the items it still asks for) or a file that is not "
    "what the kind accepts (by its bytes, not its declared type).",
    openapi_extra=_UPLOAD_BODY,
)
async def add_document(
    request: Request,
    key: OpsKey,
    case: CurrentCase,
    reader: Reader,
    store: DocumentsDep,
) -> CaseDetail:
    return await add_uploaded_document(request, case=case, reader=reader, store=store, key=key)


# --- reviews ------------------------------------------------------------------------------


@router.post(
    "/{case_id}/documents/{document_id}/review",
    summary="Approve or reject a document in review",
    description="For the driver case types. approved (with `expires_on` for a licence, "
    "insurance or vehicle registration, at least the policy's minimum validity ahead: 422 "
    "otherwise) or rejected (with `reason`: the driver is told and asked again). 409 for a "
    "case type without reviews or a document not waiting for one.",
)
async def review_document(
    document_id: str,
    body: ReviewIn,
    key: OpsKey,
    act: Annotated[CaseAction, Depends(acting("review"))],
) -> CaseDetail:
    review = ReviewDocumentInput(document_id=document_id, **body.model_dump(), by=f"ops:{key.name}")
    return await act(contracts.REVIEW_DOCUMENT, review)


# --- downloads ----------------------------------------------------------------------------


async def _case_details(case: CaseRef, reader: CaseReader) -> dict[str, Any]:
    state = await query_state(case.handle, reader.timeouts)
    if state is not None:
        return state.details
    row = await reader.session.get(Case, case.case_id, populate_existing=True)
    if row is None:
        raise temporal_unreachable("the case did not answer in time; is the worker running?")
    return row.details


def _listed(details: dict[str, Any], document_id: str) -> tuple[DocumentKind, str | None] | None:
    """The kind and checksum of a document the case lists; None if it is not the case's."""
    for doc in listed_documents(details):
        if doc["id"] == document_id:
            try:
                return DocumentKind(str(doc["kind"])), doc["sha256"]
            except ValueError:  # the claim package, or a kind this version does not know
                return DocumentKind.OTHER, doc["sha256"]
    return None


def content_disposition(name: str) -> str:
    """An attachment header for `name` (RFC 6266; RFC 5987 for a name beyond ASCII)."""
    if name.isascii() and '"' not in name and "\\" not in name:
        return f'attachment; filename="{name}"'
    fallback = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


@router.get(
    "/{case_id}/documents/{document_id}",
    summary="Download one of the case's documents (evidence, a driver's document, the claim "
    "package)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_document(
    document_id: str,
    _: ViewerKey,
    case: CurrentCase,
    reader: Reader,
    store: DocumentsDep,
) -> Response:
    details = await _case_details(case, reader)
    listed = _listed(details, document_id)
    if listed is None:
        raise Problem(404, f"case '{case.case_id}' has no document '{document_id}'")
    kind, sha256 = listed
    try:
        data = await run_in_threadpool(store.get, document_id)
    except DocumentNotFound:
        log.error("document %s of %s is not in the document store", document_id, case.case_id)
        raise Problem(404, f"document '{document_id}' is no longer in the store") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        log.error("document %s of %s does not match its checksum", document_id, case.case_id)
        raise Problem(500, f"document '{document_id}' does not match its checksum")
    is_package = document_id == details.get("package_id")
    if is_package:
        content_type = ZIP if data.startswith(ZIP_MAGIC) else "application/octet-stream"
        label = f"claim-package-{details.get('shipment_id') or case.case_id}.zip"
    else:
        content_type = detect_content_type(data) or "application/octet-stream"
        label = None
    ref = DocumentRef(
        id=document_id,
        kind=kind,
        sha256=digest,
        content_type=content_type,
        size_bytes=max(1, len(data)),
        # Never the uploader's file name: the workflow does not keep it, and the name is built
        # from the kind and the detected type (`download_name`).
        original_name_sanitized=label,
        stored_at=datetime.now(UTC),
    )
    return Response(
        content=data,
        media_type=content_type,
        headers={
            "Content-Disposition": content_disposition(download_name(ref)),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )
