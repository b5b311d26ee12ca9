"""Posted console forms → the JSON API's request models, and the console's actions.

Each action runs the JSON route's own function (`api.routes.cases`, `api.routes.damage_claims`,
`api.routes.documents`), so the console checks, updates and refuses exactly as the API does.
Most forms are the same for every case type; an action whose form depends on the type (the
document upload: which kinds it offers) has a handler per type (`TYPE_HANDLERS`). Form fields
are named after the model's field paths (`customer.email`, `missing_reasons.damage_photos`), so
a validation error points at its input. An upload (a multipart action) is not read here at all:
the JSON route's upload code reads it, capped, and hands back its fields for the CSRF check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import Request
from pydantic import BaseModel

from api.case_models import CaseDetail, CaseSort
from api.deps import MAX_OFFSET
from api.driver_page import driver_items
from api.routes import cases, damage_claims, documents, unpaid_invoices
from api.routes.cases import CaseAction
from api.routes.customer import _choice_payload
from api.routes.documents import FieldCheck
from core.documents import DocumentStore
from schemas.case_types import CASE_TYPES, MULTIPART, ActionSpec, spec_for
from schemas.documents import DocumentKind
from schemas.enums import CaseStatus, CaseType
from schemas.onboarding import ChecklistItem, ItemStatus
from schemas.tables import ApiKey

Payload = Callable[[dict[str, str], datetime], dict[str, Any]]
Run = Callable[..., Awaitable[CaseDetail]]
"""A JSON route function, called as `run(body=…, key=…, act=…, **path_params)`."""
PathParams = Callable[[dict[str, str]], dict[str, str]]
Choices = Callable[[CaseDetail], list[DocumentKind]]
UploadRun = Callable[
    [Request, ApiKey, CaseAction, DocumentStore, FieldCheck], Awaitable[CaseDetail]
]


def aware(value: str | None, default: datetime) -> datetime | str:
    """A `datetime-local` value (no offset) is read as UTC; a blank one is `default`.
    Anything unreadable is passed on as it is, for the model to name the field."""
    if not value:
        return default
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def whole(value: str | None) -> int | str | None:
    """A form's number field as the JSON body's number (the API takes no numeric strings);
    anything else is passed on as it is, for the model to name the field."""
    if not value:
        return None
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else value


def _outcome(form: dict[str, str], now: datetime) -> dict[str, Any]:
    return {
        "outcome": form.get("outcome") or None,
        "reason": form.get("reason") or None,
        "note": form.get("note") or None,
        "attempted_at": aware(form.get("attempted_at"), now),
        # The attempt the page showed: an outcome posted from a stale page is refused (409).
        "attempt_number": whole(form.get("attempt_number")),
    }


def _failed_attempt(form: dict[str, str], now: datetime) -> dict[str, Any]:
    return {
        "attempt_number": whole(form.get("attempt_number")),
        "reason": form.get("reason") or None,
        "driver_id": form.get("driver_id", ""),
        "attempted_at": aware(form.get("attempted_at"), now),
        "note": form.get("note") or None,
    }


def _prefixed(form: dict[str, str], prefix: str) -> dict[str, str]:
    """The non-blank fields named `{prefix}.{key}`, by key."""
    start = f"{prefix}."
    return {k.removeprefix(start): v for k, v in form.items() if k.startswith(start) and v}


def _file_claim(form: dict[str, str], _: datetime) -> dict[str, Any]:
    # A blank reason is left out, so the case's own check names the item still unexplained.
    return {"missing_reasons": _prefixed(form, "missing_reasons")}


def _review(form: dict[str, str], _: datetime) -> dict[str, Any]:
    return {
        "decision": form.get("decision") or None,
        "reason": form.get("reason") or None,
        "expires_on": form.get("expires_on") or None,
    }


def _reviewed_document(form: dict[str, str]) -> dict[str, str]:
    """One review form per document in review: its id travels as a hidden field."""
    return {"document_id": form.get("document_id", "")}


def _no_params(_: dict[str, str]) -> dict[str, str]:
    return {}


def _decision(form: dict[str, str], _: datetime) -> dict[str, Any]:
    return {
        "decision": form.get("decision") or None,
        "amount": form.get("amount") or None,
        "reason": form.get("reason") or None,
        # One checkbox per kind (`requested.damage_photos`): the form is read one value a name.
        "requested": list(_prefixed(form, "requested")),
    }


def _payment(form: dict[str, str], _: datetime) -> dict[str, Any]:
    # Amounts stay the text typed: the model reads them as exact decimals.
    return {
        "amount": form.get("amount") or None,
        "paid_on": form.get("paid_on") or None,
        "reference": form.get("reference", ""),
    }


def _dispute(form: dict[str, str], _: datetime) -> dict[str, Any]:
    return {
        "reason": form.get("reason", ""),
        "disputed_amount": form.get("disputed_amount") or None,
    }


def _resolve_dispute(form: dict[str, str], _: datetime) -> dict[str, Any]:
    return {
        "outcome": form.get("outcome") or None,
        "adjusted_amount": form.get("adjusted_amount") or None,
    }


def _promise(form: dict[str, str], _: datetime) -> dict[str, Any]:
    return {"promised_on": form.get("promised_on") or None, "amount": form.get("amount") or None}


async def _add_document(
    request: Request, key: ApiKey, act: CaseAction, store: DocumentStore, check: FieldCheck
) -> CaseDetail:
    return await documents.add_uploaded_document(
        request, case=act.case, reader=act.reader, store=store, key=key, check_fields=check
    )


def _type_kinds(detail: CaseDetail) -> list[DocumentKind]:
    """Every kind the case type takes (a claim's evidence: ops may add any of it)."""
    return list(spec_for(detail.type).document_kinds)


def _requested_items(detail: CaseDetail) -> list[DocumentKind]:
    """What a driver case still asks for (it refuses any other kind)."""
    items = driver_items(detail.type, detail.case_id, detail.details)
    return [item.kind for item in items if item.status is ItemStatus.REQUESTED]


def in_review(detail: CaseDetail) -> list[ChecklistItem]:
    """A driver case's documents waiting for review (each gets its own review form)."""
    items = driver_items(detail.type, detail.case_id, detail.details)
    return [i for i in items if i.status is ItemStatus.IN_REVIEW and i.document is not None]


@dataclass(frozen=True)
class FormHandler:
    """How the console turns its form for an action into the action's body, and the JSON
    route function that takes it."""

    payload: Payload
    run: Run
    params: PathParams = _no_params
    """The route's path parameters beyond the case, from the form (a review's document)."""


@dataclass(frozen=True)
class UploadHandler:
    """A multipart action: the JSON route's upload code reads the request itself (capped)
    and calls the console's check on the form's fields before it stores anything. `choices`
    are the kinds the form offers for the case."""

    run: UploadRun
    choices: Choices


HANDLERS: dict[str, FormHandler | UploadHandler] = {
    "redelivery": FormHandler(
        lambda form, _: _choice_payload(form, form.get("country") or "US"), cases.redelivery
    ),
    "delivery-outcome": FormHandler(_outcome, cases.delivery_outcome),
    "failed-attempt": FormHandler(_failed_attempt, cases.failed_attempt),
    "review": FormHandler(_review, documents.review_document, _reviewed_document),
    "file": FormHandler(_file_claim, damage_claims.file_claim),
    "decision": FormHandler(_decision, damage_claims.record_decision),
    "payments": FormHandler(_payment, unpaid_invoices.record_payment),
    "disputes": FormHandler(_dispute, unpaid_invoices.open_dispute),
    "resolve-dispute": FormHandler(_resolve_dispute, unpaid_invoices.resolve_dispute),
    "promise-to-pay": FormHandler(_promise, unpaid_invoices.promise_to_pay),
    "write-off": FormHandler(
        lambda form, _: {"reason": form.get("reason", "")}, unpaid_invoices.write_off
    ),
    "notes": FormHandler(lambda form, _: {"text": form.get("text", "")}, cases.add_note),
    "assign": FormHandler(lambda form, _: {"assignee": form.get("assignee") or None}, cases.assign),
    "escalate": FormHandler(lambda form, _: {"reason": form.get("reason", "")}, cases.escalate),
    "cancel": FormHandler(lambda form, _: {"reason": form.get("reason", "")}, cases.cancel),
}
"""The forms every case type with the action shares."""

_DRIVER_DOCUMENTS = UploadHandler(_add_document, _requested_items)
TYPE_HANDLERS: dict[CaseType, dict[str, FormHandler | UploadHandler]] = {
    CaseType.DAMAGE_CLAIM: {"documents": UploadHandler(_add_document, _type_kinds)},
    CaseType.DRIVER_ONBOARDING: {"documents": _DRIVER_DOCUMENTS},
    CaseType.DRIVER_COMPLIANCE: {"documents": _DRIVER_DOCUMENTS},
}
"""The forms that depend on the case type."""


@dataclass(frozen=True)
class Action:
    """A console action: the registry's declaration (title, body, what it says once done)
    and the console's form handler."""

    spec: ActionSpec
    handler: FormHandler | UploadHandler

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def done(self) -> str:
        return self.spec.done

    @property
    def model(self) -> type[BaseModel]:
        return self.spec.body

    @property
    def uploads(self) -> bool:
        """A multipart form (`enctype="multipart/form-data"`), run by `upload`."""
        return isinstance(self.handler, UploadHandler)

    def _form_handler(self) -> FormHandler:
        if not isinstance(self.handler, FormHandler):
            raise TypeError(f"'{self.spec.name}' is an upload: use Action.upload")
        return self.handler

    def payload(self, form: dict[str, str], now: datetime) -> dict[str, Any]:
        return self._form_handler().payload(form, now)

    async def run(
        self, body: Any, key: ApiKey, act: CaseAction, form: dict[str, str]
    ) -> CaseDetail:
        handler = self._form_handler()
        return await handler.run(body=body, key=key, act=act, **handler.params(form))

    def choices(self, detail: CaseDetail) -> list[DocumentKind]:
        """The kinds an upload form offers for this case."""
        if not isinstance(self.handler, UploadHandler):
            raise TypeError(f"'{self.spec.name}' is no upload")
        return self.handler.choices(detail)

    async def upload(
        self,
        request: Request,
        key: ApiKey,
        act: CaseAction,
        store: DocumentStore,
        check: FieldCheck,
    ) -> CaseDetail:
        if not isinstance(self.handler, UploadHandler):
            raise TypeError(f"'{self.spec.name}' is no upload: use Action.run")
        return await self.handler.run(request, key, act, store, check)


def actions_for(case_type: CaseType) -> dict[str, Action]:
    """The console's actions for a case type, in the registry's order."""
    spec = CASE_TYPES[case_type]
    handlers = HANDLERS | TYPE_HANDLERS.get(case_type, {})
    return {a.name: Action(a, handlers[a.name]) for a in spec.actions if a.name in handlers}


def is_upload(spec: ActionSpec | None) -> bool:
    """The registry declares the action multipart: its body is an upload."""
    return spec is not None and spec.media_type == MULTIPART


def failed_delivery_payload(form: dict[str, str], now: datetime) -> dict[str, Any]:
    """The `POST /cases/failed-deliveries` body from the console's form."""
    return {
        "shipment_id": form.get("shipment_id", ""),
        "client_id": form.get("client_id", ""),
        "driver_id": form.get("driver_id", ""),
        "customer": {
            "name": form.get("customer.name", ""),
            "email": form.get("customer.email", ""),
            "phone": form.get("customer.phone") or None,
        },
        "address": {
            "line1": form.get("address.line1", ""),
            "line2": form.get("address.line2") or None,
            "city": form.get("address.city", ""),
            "postal_code": form.get("address.postal_code", ""),
            "country": (form.get("address.country") or "US").upper(),
        },
        "attempt_number": whole(form.get("attempt_number")) or 1,
        "reason": form.get("reason") or None,
        "attempted_at": aware(form.get("attempted_at"), now),
        "note": form.get("note") or None,
    }


def driver_onboarding_payload(form: dict[str, str], _: datetime) -> dict[str, Any]:
    """The `POST /cases/driver-onboardings` body from the console's form."""
    return {
        "driver_id": form.get("driver_id") or None,
        "name": form.get("name", ""),
        "email": form.get("email", ""),
        "phone": form.get("phone") or None,
        "depot_id": form.get("depot_id", ""),
        "vehicle_type": form.get("vehicle_type") or None,
        "planned_start_date": form.get("planned_start_date") or None,
    }


# --- the case list's filters ---------------------------------------------------------------

_BOOLS = {"true": True, "false": False}
MINE = "mine"
"""The assignee filter's "my cases": the signed-in key's name."""


@dataclass
class ListFilters:
    """`GET /cases` filters read from the console's GET form, where a blank means "any".
    Errors are sentences naming the filter as the form labels it."""

    type: CaseType | None = None
    status: CaseStatus | None = None
    client_id: str | None = None
    depot_id: str | None = None
    assignee: str | None = None
    escalated: bool | None = None
    overdue: bool | None = None
    deadline_from: date | None = None
    deadline_to: date | None = None
    q: str | None = None
    sort: CaseSort = CaseSort.OPENED_DESC
    offset: int = 0

    @classmethod
    def parse(cls, params: dict[str, str]) -> tuple[ListFilters, list[str]]:
        errors: list[str] = []
        found = cls(
            client_id=params.get("client_id") or None,
            depot_id=params.get("depot_id") or None,
            assignee=(params.get("assignee") or "").strip() or None,
            q=params.get("q") or None,
        )

        def pick(name: str, label: str, choices: dict[str, Any]) -> Any:
            raw = params.get(name) or ""
            if raw and raw not in choices:
                errors.append(f"{label}: “{raw}” is not one of the choices offered.")
            return choices.get(raw)

        def day(name: str, label: str) -> date | None:
            raw = params.get(name) or ""
            try:
                return date.fromisoformat(raw) if raw else None
            except ValueError:
                errors.append(f"{label}: “{raw}” is not a date (year-month-day).")
                return None

        found.type = pick("type", "Type", {t.value: t for t in CaseType})
        found.status = pick("status", "Status", {s.value: s for s in CaseStatus})
        found.escalated = pick("escalated", "Escalated", _BOOLS)
        found.overdue = pick("overdue", "Overdue", _BOOLS)
        found.sort = pick("sort", "Sort", {s.value: s for s in CaseSort}) or CaseSort.OPENED_DESC
        found.deadline_from = day("deadline_from", "Deadline from")
        found.deadline_to = day("deadline_to", "Deadline to")
        if found.deadline_from and found.deadline_to and found.deadline_to < found.deadline_from:
            errors.append("Deadline to: the end of the range is before its start.")
            found.deadline_to = None
        raw_offset = params.get("offset") or "0"
        # ASCII digits only: "²".isdigit() holds, yet int("²") fails.
        if raw_offset.isascii() and raw_offset.isdigit() and int(raw_offset) <= MAX_OFFSET:
            found.offset = int(raw_offset)
        else:
            errors.append(
                f"Page: “{raw_offset}” is not a position in the list (a whole number from 0 "
                f"to {MAX_OFFSET})."
            )
        return found, errors

    def assignee_for(self, me: str) -> str | None:
        """The assignee to list: "mine" is the signed-in key's name."""
        return me if self.assignee == MINE else self.assignee

    @property
    def deadline_after(self) -> datetime | None:
        """The first instant of the "from" day (UTC days: the list spans depots' zones)."""
        if self.deadline_from is None:
            return None
        return datetime.combine(self.deadline_from, time(0), tzinfo=UTC)

    @property
    def deadline_before(self) -> datetime | None:
        """The first instant after the "to" day: the range includes the whole day."""
        if self.deadline_to is None:
            return None
        return datetime.combine(self.deadline_to + timedelta(days=1), time(0), tzinfo=UTC)

    def query(self, **changes: Any) -> dict[str, str]:
        """The non-blank filters as query parameters (for the pagination and sort links)."""
        values = {
            "type": self.type,
            "status": self.status,
            "client_id": self.client_id,
            "depot_id": self.depot_id,
            "assignee": self.assignee,
            "escalated": self.escalated,
            "overdue": self.overdue,
            "deadline_from": self.deadline_from,
            "deadline_to": self.deadline_to,
            "q": self.q,
            "sort": None if self.sort is CaseSort.OPENED_DESC else self.sort,
            "offset": self.offset or None,
        } | changes
        return {
            k: (str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in values.items()
            if v is not None
        }
