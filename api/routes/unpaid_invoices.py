"""Unpaid invoices: open one (`POST /cases/unpaid-invoices`) and act on it: payments,
disputes and their resolution, promises to pay, write-offs (admins).

Workflow ID = `unpaid-invoice-{invoice_id}`: one case per invoice, a repeat open returns it.
Money is exact: amounts arrive as decimal strings (a JSON number is a 422), the currency's
minor units (from babel: none for JPY, two for GBP) are checked here and snapshotted into the
case's input, and the case itself checks every later amount against them."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from api.case_models import CaseDetail
from api.casework import CaseReader, Opening, Reader, open_case
from api.deps import AdminKey, DocumentsDep, OpsKey, TemporalDep
from api.errors import Problem, invalid, invalid_fields
from api.routes.cases import CaseAction, acting
from api.uploads import UploadRejected, store_upload
from schemas import contracts
from schemas.case_types import UNPAID_INVOICE
from schemas.documents import DocumentKind, DocumentRef
from schemas.enums import Role
from schemas.invoice_cases import InvoiceCaseRefused, InvoiceClient, unpaid_invoice_input
from schemas.invoices import (
    Dispute,
    DisputeResolution,
    Payment,
    Promise,
    UnpaidInvoiceInput,
    WriteOff,
)
from schemas.requests import (
    DisputeIn,
    InvoiceOpen,
    PaymentIn,
    PromiseIn,
    ResolveDisputeIn,
    WriteOffIn,
)
from schemas.tables import Client

router = APIRouter(prefix="/cases", tags=["unpaid invoices"])


def _latest_day(now: datetime) -> date:
    """The latest date a past event may carry: today, in the time zone furthest ahead."""
    return (now + timedelta(hours=14)).date()


async def _invoice_input(
    body: InvoiceOpen, reader: CaseReader, opened_by: str
) -> tuple[UnpaidInvoiceInput, bytes | None]:
    """Check everything before Temporal hears of it (`schemas.invoice_cases`, shared with the
    invoicing run) and the PDF's encoding: nothing half-applied. Returns the case's input and
    the PDF's bytes, if one was given."""
    row = await reader.session.get(Client, body.client_id)
    client = (
        InvoiceClient(
            id=row.id,
            name=row.name,
            policy_overrides=row.policy_overrides,
            timezone=row.timezone,
        )
        if row is not None
        else None
    )
    pdf = _pdf_bytes(body.invoice_pdf) if body.invoice_pdf is not None else None
    errors: list[dict[str, str]] = []
    if body.invoice_pdf is not None and pdf is None:
        errors.append({"field": "invoice_pdf", "message": "not valid base64"})
    if body.issued_on > _latest_day(reader.now):
        message = f"{body.issued_on.isoformat()} is in the future"
        errors.append({"field": "issued_on", "message": message})
    try:
        case_input = unpaid_invoice_input(
            invoice_id=body.invoice_id,
            client_id=body.client_id,
            client=client,
            amount=body.amount,
            currency=body.currency,
            issued_on=body.issued_on,
            due_on=body.due_on,
            reference=body.reference,
            opened_by=opened_by,
            other_errors=errors,
        )
    except InvoiceCaseRefused as refused:
        raise invalid_fields(refused.errors) from None
    return case_input, pdf


def _pdf_bytes(encoded: str) -> bytes | None:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


async def _store_invoice_pdf(
    store: DocumentsDep, data: bytes, invoice_id: str, max_bytes: int
) -> DocumentRef:
    """Stored before the case starts (the case keeps only the reference): a PDF by its bytes,
    within the upload limit; 422 naming `invoice_pdf` otherwise."""
    try:
        stored = await store_upload(
            store,
            data,
            kind=DocumentKind.INVOICE,
            filename=f"{invoice_id}.pdf",
            max_bytes=max_bytes,
        )
    except UploadRejected as err:
        raise invalid("invoice_pdf", err.reason) from None
    assert stored is not None  # None only for a document the case already holds: none here
    return stored


@router.post(
    "/unpaid-invoices",
    status_code=status.HTTP_201_CREATED,
    summary="Chase an unpaid invoice",
    description="Opens `unpaid-invoice-{invoice_id}` on the client's dunning policy "
    "(`policy_overrides.unpaid_invoice` over the defaults, snapshotted now): reminders to "
    "the client's billing contact from 3 days before the due date to a dispatch hold 30 days "
    "after it. An invoice already overdue gets only the latest step that is due, once. The "
    "deadline is the next ladder date. `amount` is a decimal string (never a JSON number) "
    "with no more decimals than the currency has; `due_on` defaults to `issued_on` plus the "
    "payment terms; `invoice_pdf` (base64) is kept on the case and attached to every "
    "reminder. 422 for an unknown client or currency, a zero or negative amount, a due date "
    "before the issue date, or an invoice_pdf that is not a PDF.",
    responses={200: {"description": "The invoice already has a case; it is returned."}},
)
async def open_unpaid_invoice(
    body: InvoiceOpen,
    key: OpsKey,
    response: Response,
    temporal: TemporalDep,
    reader: Reader,
    store: DocumentsDep,
) -> CaseDetail:
    case_input, pdf = await _invoice_input(body, reader, f"ops:{key.name}")
    if pdf is not None:
        ref = await _store_invoice_pdf(
            store, pdf, body.invoice_id, reader.settings.max_upload_bytes
        )
        case_input = case_input.model_copy(update={"invoice_pdf": ref})
    opening = Opening(
        UNPAID_INVOICE,
        case_input,
        business_key=body.invoice_id,
        client_id=case_input.client_id,
        subject=f"Invoice {body.invoice_id}: {case_input.amount} {body.currency} due "
        f"{case_input.due_on.isoformat()}",
    )
    return await open_case(opening, response=response, temporal=temporal, reader=reader)


# --- actions ------------------------------------------------------------------------------


@router.post(
    "/{case_id}/payments",
    summary="Record a payment",
    description="The balance drops by `amount` (a decimal string in the invoice's currency); "
    "the ladder goes on for the rest. Paid in full closes the case `paid` (thanking the "
    "client, lifting a dispatch hold); more than the balance records the credit and tells the "
    "account manager. The same `reference` again is recorded once (200, nothing changes).",
)
async def record_payment(
    body: PaymentIn, key: OpsKey, act: Annotated[CaseAction, Depends(acting("payments"))]
) -> CaseDetail:
    if body.paid_on > _latest_day(act.reader.now):
        raise invalid("paid_on", f"{body.paid_on.isoformat()} is in the future")
    payment = Payment(**body.model_dump(), by=f"ops:{key.name}")
    return await act(contracts.RECORD_PAYMENT, payment)


@router.post(
    "/{case_id}/disputes",
    summary="Record a dispute",
    description="The client contests the invoice (all of it, or `disputed_amount`): the "
    "ladder pauses and the account manager is told.",
)
async def open_dispute(
    body: DisputeIn, key: OpsKey, act: Annotated[CaseAction, Depends(acting("disputes"))]
) -> CaseDetail:
    dispute = Dispute(**body.model_dump(), by=f"ops:{key.name}")
    return await act(contracts.OPEN_DISPUTE, dispute)


@router.post(
    "/{case_id}/disputes/resolve",
    summary="Resolve the dispute",
    description="`upheld` keeps the invoice as it was; `adjusted` (with `adjusted_amount`, the "
    "corrected total) changes the balance. The ladder resumes from where it was, after the "
    "policy's grace period (7 days) when the due date has passed.",
)
async def resolve_dispute(
    body: ResolveDisputeIn,
    key: OpsKey,
    act: Annotated[CaseAction, Depends(acting("resolve-dispute"))],
) -> CaseDetail:
    # "adjusted_amount required when outcome is adjusted" is a 422 naming the field through
    # the app's handler for model validation errors (api/errors.py).
    resolution = DisputeResolution(**body.model_dump(), by=f"ops:{key.name}")
    return await act(contracts.RESOLVE_DISPUTE, resolution)


@router.post(
    "/{case_id}/promise-to-pay",
    summary="Record a promise to pay",
    description="The ladder pauses until `promised_on`: paid in full by then closes the case; "
    "otherwise the client gets a 'promise missed' email, the account manager is told and "
    "the ladder resumes.",
)
async def promise_to_pay(
    body: PromiseIn, key: OpsKey, act: Annotated[CaseAction, Depends(acting("promise-to-pay"))]
) -> CaseDetail:
    promise = Promise(**body.model_dump(), by=f"ops:{key.name}")
    return await act(contracts.PROMISE_TO_PAY, promise)


@router.post(
    "/{case_id}/write-off",
    summary="Write the invoice off (admin)",
    description="Closes the case `written_off`; nothing more is sent.",
)
async def write_off(
    body: WriteOffIn,
    # The type's check first: a case without the action is a 409 whoever asks.
    act: Annotated[CaseAction, Depends(acting("write-off"))],
    key: AdminKey,
) -> CaseDetail:
    if not key.role.allows(Role.ADMIN):  # the console calls this function directly
        raise Problem(403, f"this needs the admin role; the key '{key.name}' is {key.role.value}")
    return await act(contracts.WRITE_OFF, WriteOff(reason=body.reason, by=f"admin:{key.name}"))
