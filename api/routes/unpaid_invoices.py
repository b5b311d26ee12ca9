"""Unpaid invoices: open one (`POST /cases/unpaid-invoices`) and act on it: payments,
disputes and their resolution, promises to pay, write-offs (admins).

Workflow ID = `unpaid-invoice-{invoice_id}`: one case per invoice, a repeat open returns it.
Money is exact: amounts arrive as decimal strings (a JSON number is a 422), the currency's
minor units (from babel: none for JPY, two for GBP) are checked here and snapshotted into the
case's input, and the case itself checks every later amount against them."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from babel.numbers import get_currency_precision, is_currency
from fastapi import APIRouter, Depends, Response, status
from pydantic import ValidationError

from api.case_models import CaseDetail
from api.casework import CaseReader, Opening, Reader, open_case
from api.deps import AdminKey, OpsKey, TemporalDep
from api.errors import Problem, invalid, invalid_fields
from api.routes.cases import CaseAction, acting
from schemas import contracts
from schemas.case_types import UNPAID_INVOICE, resolve_policy
from schemas.enums import Role
from schemas.invoices import (
    Dispute,
    DisputeResolution,
    DunningPolicy,
    MoneyError,
    Payment,
    Promise,
    UnpaidInvoiceInput,
    WriteOff,
    exact,
    opening_plan,
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


def minor_units(currency: str) -> int | None:
    """The currency's minor units (ISO 4217, from babel); None for an unknown currency."""
    return get_currency_precision(currency) if is_currency(currency) else None


async def _invoice_input(
    body: InvoiceOpen, reader: CaseReader, opened_by: str
) -> UnpaidInvoiceInput:
    """Check everything before Temporal hears of it: the client and its dunning policy, the
    currency and the amount's decimals, the due date (nothing half-applied)."""
    client = await reader.session.get(Client, body.client_id)
    errors: list[dict[str, str]] = []
    policy: DunningPolicy | None = None
    if client is None:
        errors.append({"field": "client_id", "message": f"unknown client '{body.client_id}'"})
    else:
        try:
            policy = resolve_policy(UNPAID_INVOICE.case_type, client.policy_overrides)
        except ValidationError:
            message = f"client '{client.id}' has an invalid unpaid_invoice policy override"
            errors.append({"field": "client_id", "message": message})
    units = minor_units(body.currency)
    amount = body.amount
    if units is None:
        errors.append({"field": "currency", "message": f"unknown currency '{body.currency}'"})
    else:
        try:
            amount = exact(body.amount, units)
        except MoneyError:
            message = f"{body.amount} has more decimals than {body.currency} allows ({units})"
            errors.append({"field": "amount", "message": message})
    if body.issued_on > _latest_day(reader.now):
        message = f"{body.issued_on.isoformat()} is in the future"
        errors.append({"field": "issued_on", "message": message})
    terms = policy.payment_terms_days if policy else DunningPolicy().payment_terms_days
    due_on = body.due_on or body.issued_on + timedelta(days=terms)
    if due_on < body.issued_on:
        message = f"{due_on.isoformat()} is before issued_on ({body.issued_on.isoformat()})"
        errors.append({"field": "due_on", "message": message})
    if errors or client is None or policy is None or units is None:
        raise invalid_fields(errors)
    return UnpaidInvoiceInput(
        invoice_id=body.invoice_id,
        client_id=client.id,
        amount=amount,
        currency=body.currency,
        minor_units=units,
        issued_on=body.issued_on,
        due_on=due_on,
        reference=body.reference,
        policy=policy,
        opened_by=opened_by,
    )


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
    "payment terms. 422 for an unknown client or currency, a zero or negative amount, or a "
    "due date before the issue date.",
    responses={200: {"description": "The invoice already has a case; it is returned."}},
)
async def open_unpaid_invoice(
    body: InvoiceOpen,
    key: OpsKey,
    response: Response,
    temporal: TemporalDep,
    reader: Reader,
) -> CaseDetail:
    case_input = await _invoice_input(body, reader, f"ops:{key.name}")
    send_now, _, ahead = opening_plan(case_input.policy.ladder(case_input.due_on), reader.now)
    first = send_now or (ahead[0] if ahead else None)
    opening = Opening(
        UNPAID_INVOICE,
        case_input,
        business_key=body.invoice_id,
        client_id=case_input.client_id,
        subject=f"Invoice {body.invoice_id}: {case_input.amount} {body.currency} due "
        f"{case_input.due_on.isoformat()}",
        deadline_at=first.at if first else None,
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
