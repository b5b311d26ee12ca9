"""The unpaid-invoice case's input, built one way whoever opens the case: ops over HTTP
(`POST /cases/unpaid-invoices`) or the invoicing run (an activity reads the client, then calls
this). Everything is checked before Temporal hears of the case: the client and its dunning
policy override, the currency and the amount's decimals, the due date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from schemas.case_types import UNPAID_INVOICE, resolve_policy
from schemas.documents import DocumentRef
from schemas.invoices import DunningPolicy, MoneyError, UnpaidInvoiceInput, exact
from schemas.rates import currency_minor_units


@dataclass(frozen=True)
class InvoiceClient:
    """The client as the case needs it (read from its row by the caller)."""

    id: str
    name: str
    policy_overrides: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"


class InvoiceCaseRefused(ValueError):
    """The case cannot be opened as asked; `errors` names each field and why."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def unpaid_invoice_input(
    *,
    invoice_id: str,
    client_id: str,
    client: InvoiceClient | None,
    amount: Decimal,
    currency: str,
    issued_on: dt.date,
    due_on: dt.date | None,
    opened_by: str,
    reference: str | None = None,
    invoice_pdf: DocumentRef | None = None,
    delivery_problem: str | None = None,
    other_errors: list[dict[str, str]] | None = None,
) -> UnpaidInvoiceInput:
    """The case's input with the client's dunning policy snapshotted now; InvoiceCaseRefused
    listing every problem (with `other_errors`, the caller's own) otherwise. `due_on`
    defaults to `issued_on` plus the policy's payment terms."""
    errors = list(other_errors or [])
    policy: DunningPolicy | None = None
    if client is None:
        errors.append({"field": "client_id", "message": f"unknown client '{client_id}'"})
    else:
        try:
            policy = resolve_policy(UNPAID_INVOICE.case_type, client.policy_overrides)
        except ValidationError:
            message = f"client '{client.id}' has an invalid unpaid_invoice policy override"
            errors.append({"field": "client_id", "message": message})
    units = currency_minor_units(currency)
    if units is None:
        errors.append({"field": "currency", "message": f"unknown currency '{currency}'"})
    else:
        try:
            amount = exact(amount, units)
        except MoneyError:
            message = f"{amount} has more decimals than {currency} allows ({units})"
            errors.append({"field": "amount", "message": message})
    terms = policy.payment_terms_days if policy else DunningPolicy().payment_terms_days
    due = due_on or issued_on + dt.timedelta(days=terms)
    if due < issued_on:
        message = f"{due.isoformat()} is before issued_on ({issued_on.isoformat()})"
        errors.append({"field": "due_on", "message": message})
    if errors or client is None or policy is None or units is None:
        raise InvoiceCaseRefused(errors)
    return UnpaidInvoiceInput(
        invoice_id=invoice_id,
        client_id=client.id,
        client_name=client.name,
        amount=amount,
        currency=currency,
        minor_units=units,
        issued_on=issued_on,
        due_on=due,
        reference=reference,
        invoice_pdf=invoice_pdf,
        delivery_problem=delivery_problem,
        policy=policy,
        timezone=client.timezone,
        opened_by=opened_by,
    )
