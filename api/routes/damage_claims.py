"""Damage and loss claims: open one (`POST /cases/damage-claims`), add evidence
(`POST /cases/{id}/documents`, multipart), file early (`/file`), record the decision
(`/decision`), and download what the case holds (`GET /cases/{id}/documents/{document_id}`).

Workflow ID = `damage-claim-{shipment_id}`: one claim per shipment, a repeat open returns it.
Documents are stored before the workflow hears of them; the workflow keeps only the
reference (id + checksum)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.case_models import CaseDetail
from api.casework import (
    CaseReader,
    Opening,
    Reader,
    open_case,
    query_state,
    require_action,
    require_state,
    run_update,
)
from api.deps import CaseRef, CurrentCase, DocumentsDep, OpsKey, TemporalDep, ViewerKey
from api.errors import Problem, invalid, invalid_fields, temporal_unreachable
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
from schemas.case_types import DAMAGE_CLAIM, resolve_policy
from schemas.cases import Customer
from schemas.claims import (
    AddDocumentInput,
    DamageClaimInput,
    DecisionInput,
    FileClaimInput,
)
from schemas.documents import DocumentKind, DocumentRef
from schemas.enums import CaseType
from schemas.requests import DamageClaimOpen, DecisionIn, FileClaimIn
from schemas.tables import ApiKey, Case, Client, Driver, Shipment

log = logging.getLogger("casedesk.api")

router = APIRouter(prefix="/cases", tags=["damage claims"])


# --- opening ------------------------------------------------------------------------------


def _shipment_customer(shipment: Shipment | None) -> Customer | None:
    if shipment is None:
        return None
    try:
        return Customer(
            name=shipment.customer_name,
            email=shipment.customer_email,
            phone=shipment.customer_phone,
        )
    except ValidationError:  # an unusable record: the claim goes on without a customer
        log.warning("shipment %s has no usable customer contact", shipment.id)
        return None


async def _claim_input(
    body: DamageClaimOpen, reader: CaseReader, opened_by: str
) -> DamageClaimInput:
    """Check every reference before anything reaches Temporal (nothing half-applied)."""
    session = reader.session
    client = await session.get(Client, body.client_id)
    driver = await session.get(Driver, body.driver_id) if body.driver_id else None
    shipment = await session.get(Shipment, body.shipment_id)
    errors: list[dict[str, str]] = []
    if client is None:
        errors.append({"field": "client_id", "message": f"unknown client '{body.client_id}'"})
    elif shipment is not None and shipment.client_id != client.id:
        message = f"shipment '{shipment.id}' is not a shipment of client '{client.id}'"
        errors.append({"field": "client_id", "message": message})
    if body.driver_id and driver is None:
        errors.append({"field": "driver_id", "message": f"unknown driver '{body.driver_id}'"})
    depot_id = driver.depot_id if driver else shipment.depot_id if shipment else None
    if depot_id is None and not body.driver_id:
        message = (
            f"no shipment record for '{body.shipment_id}' gives the depot: "
            "send the driver_id (the claim goes to the driver's depot)"
        )
        errors.append({"field": "driver_id", "message": message})
    if errors or client is None or depot_id is None:
        raise invalid_fields(errors)
    linked = await session.get(Case, CaseType.FAILED_DELIVERY.workflow_id(body.shipment_id))
    return DamageClaimInput(
        shipment_id=body.shipment_id,
        client_id=client.id,
        depot_id=depot_id,
        claim_type=body.claim_type,
        reported_by=body.reported_by,
        delivery_event_at=body.delivery_event_at,
        declared_value=body.declared_value,
        currency=body.currency,
        description=body.description,
        customer=body.customer or _shipment_customer(shipment),
        driver_id=driver.id if driver else None,
        linked_case_id=linked.id if linked else None,
        policy=resolve_policy(DAMAGE_CLAIM.case_type, client.policy_overrides),
        opened_by=opened_by,
    )


@router.post(
    "/damage-claims",
    status_code=status.HTTP_201_CREATED,
    summary="Open a damage or loss claim",
    description="The filing deadline is the delivery event plus the filing window (72 h); a "
    "claim reported after it is still opened, marked late and escalated at once. The depot "
    "is the driver's, else the shipment record's. The claim runs on the client's claim "
    "policy (`policy_overrides.damage_claim`) over the defaults.",
    responses={200: {"description": "The shipment already has a claim; it is returned."}},
)
async def open_damage_claim(
    body: DamageClaimOpen,
    key: OpsKey,
    response: Response,
    temporal: TemporalDep,
    reader: Reader,
) -> CaseDetail:
    case_input = await _claim_input(body, reader, f"ops:{key.name}")
    opening = Opening(
        DAMAGE_CLAIM,
        case_input,
        business_key=body.shipment_id,
        client_id=case_input.client_id,
        depot_id=case_input.depot_id,
        subject=f"Claim for shipment {body.shipment_id}: {body.claim_type.value}",
        deadline_at=case_input.delivery_event_at + case_input.policy.filing_window,
    )
    # One claim per shipment: a repeat (or a second report) gets the existing case.
    return await open_case(opening, response=response, temporal=temporal, reader=reader)


# --- actions ------------------------------------------------------------------------------


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
                            "description": "The checklist item this document is.",
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


def _kind(raw: str | None) -> DocumentKind:
    if not raw:
        raise invalid("kind", "field required")
    try:
        return DocumentKind(raw)
    except ValueError:
        accepted = ", ".join(k.value for k in DocumentKind)
        raise invalid("kind", f"unknown document kind '{raw}' (one of: {accepted})") from None


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
    """Store the multipart upload (`kind`, `file`) on `request` and add it to the claim: the
    one path of the JSON route and the console.

    409 unless the case takes documents now, and 413 beyond the upload limit, both before
    the body is read; then `check_fields` sees the form's text fields before anything is
    stored (the console checks its CSRF token there, since the token travels in the body);
    422 for a missing or unknown kind, a missing file, or bytes the kind does not accept."""
    require_action(case.case_id, "documents")
    # Refuse before reading or storing anything when the case takes no documents now.
    state = await require_state(case.handle, reader.timeouts)
    if "documents" not in state.allowed_actions:
        raise Problem(
            409,
            f"documents cannot be added now: the claim is {state.status.value}",
            slug="action-not-allowed",
        )
    max_bytes = reader.settings.max_upload_bytes
    try:
        form = await read_upload_form(request, max_bytes=max_bytes)
    except UploadTooLarge as err:
        raise too_large_problem(err) from None
    if check_fields is not None:
        check_fields(form.fields)
    kind = _kind(form.fields.get("kind"))
    if form.data is None:
        raise invalid("file", "field required: attach the document as `file`")
    try:
        ref = await store_upload(store, form.data, kind=kind, filename=form.filename)
    except UploadRejected as err:
        raise invalid(err.field, err.reason) from None
    # Should the case refuse it now after all (filed meanwhile, say), the stored file stays
    # in the store unreferenced: an orphan, harmless, and cheaper than a second round trip.
    upload = AddDocumentInput(document=ref, by=f"ops:{key.name}")
    state = await run_update(case, contracts.ADD_DOCUMENT, upload, reader.timeouts)
    return await reader.detail(case, state)


@router.post(
    "/{case_id}/documents",
    summary="Add a document to a claim (multipart: kind, file)",
    description="Refused with 409 unless the claim is gathering evidence, with 413 beyond "
    "the upload limit (before the body is read) and with 422 when the file is not what the "
    "kind accepts (by its bytes, not its declared type).",
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


@router.post(
    "/{case_id}/file",
    summary="File the claim now, saying why missing items are missing",
    description="Every checklist item still missing needs its reason in `missing_reasons` "
    "(422 otherwise). The claim package is compiled and sent after the answer.",
)
async def file_claim(
    body: FileClaimIn, key: OpsKey, act: Annotated[CaseAction, Depends(acting("file"))]
) -> CaseDetail:
    request = FileClaimInput(missing_reasons=body.missing_reasons, by=f"ops:{key.name}")
    return await act(contracts.FILE_CLAIM, request)


@router.post(
    "/{case_id}/decision",
    summary="Record the carrier's or insurer's decision",
    description="approved (with `amount`) closes the claim as paid, denied (with `reason`) "
    "as denied; more_information (with `requested`) sends it back to gathering them.",
)
async def record_decision(
    body: DecisionIn, key: OpsKey, act: Annotated[CaseAction, Depends(acting("decision"))]
) -> CaseDetail:
    decision = DecisionInput(**body.model_dump(), by=f"ops:{key.name}")
    return await act(contracts.RECORD_DECISION, decision)


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
    for doc in details.get("documents") or []:
        if isinstance(doc, dict) and doc.get("id") == document_id:
            try:
                return DocumentKind(str(doc.get("kind"))), doc.get("sha256")
            except ValueError:
                return DocumentKind.OTHER, doc.get("sha256")
    if document_id and details.get("package_id") == document_id:
        return DocumentKind.OTHER, None
    return None


def _content_disposition(name: str) -> str:
    if name.isascii() and '"' not in name and "\\" not in name:
        return f'attachment; filename="{name}"'
    fallback = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


@router.get(
    "/{case_id}/documents/{document_id}",
    summary="Download one of the case's documents (evidence or the claim package)",
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
            "Content-Disposition": _content_disposition(download_name(ref)),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )
