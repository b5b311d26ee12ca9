"""The API's own request and response models: reference data, API keys, pages.

Case views live in `api/case_models.py`; workflow payloads are reused from `schemas.cases`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas import examples
from schemas.documents import DocumentKind
from schemas.enums import (
    CaseStatus,
    CaseType,
    ContactKind,
    DriverStatus,
    Resolution,
    Role,
    VehicleType,
)
from schemas.examples import example
from schemas.onboarding import ItemStatus
from schemas.reporting import DEFAULT_HOUR
from schemas.types import Email, SafeId, SafeText

T = TypeVar("T")


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def known_time_zone(value: str) -> str:
    """An IANA time zone name that zoneinfo can load (e.g. Europe/London)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: an IANA name, e.g. Europe/London") from None
    return value


TimeZoneField = Field(
    "UTC",
    min_length=1,
    max_length=64,
    description="IANA name, e.g. Europe/London. A client's stops are dated, billed and "
    "priced by the date in its time zone.",
)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
    next_cursor: str | None = Field(
        None,
        description="Where the next page starts (`GET /cases?cursor=`): null on the last "
        "page and on lists without cursors.",
    )


# --- clients ------------------------------------------------------------------------------


class ContactIn(In):
    model_config = ConfigDict(json_schema_extra=example(examples.contact))

    kind: ContactKind
    name: SafeText = Field(min_length=1, max_length=200)
    email: Email
    phone: SafeText | None = Field(None, max_length=40)


class ReportingIn(In):
    """`reporting` on `POST /clients` and `PATCH /clients/{id}` (on PATCH, the fields given
    change and the others stay)."""

    daily: bool = Field(
        False, strict=True, description="Send the daily exception summary (yesterday)."
    )
    weekly: bool = Field(
        False, strict=True, description="Send the weekly performance report on Mondays."
    )
    hour: int = Field(
        DEFAULT_HOUR, ge=0, le=23, strict=True, description="The local hour of sending, 0-23."
    )
    contacts: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="The client's `reporting` contacts the reports go to, each by its id or "
        "its email address; empty: every reporting contact. Anything else is a 422.",
    )


class ReportingOut(BaseModel):
    daily: bool
    weekly: bool
    hour: int
    contacts: list[uuid.UUID] = Field(description="As set; empty: every reporting contact.")
    recipients: list[uuid.UUID] = Field(description="Whom the next report goes to.")
    status: Literal["off", "ok", "no_reporting_contact"] = Field(
        description="`no_reporting_contact`: reports are on but nobody would receive them "
        "(nothing is sent; the account manager is told once)."
    )


class ClientCreate(In):
    model_config = ConfigDict(json_schema_extra=example(examples.client_create))

    id: SafeId
    name: SafeText = Field(min_length=1, max_length=200)
    timezone: str = TimeZoneField
    contacts: list[ContactIn] = Field(default_factory=list)
    policy_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per case type, e.g. {'failed_delivery': {'max_attempts': 2}}.",
    )
    reporting: ReportingIn | None = Field(
        None, description="Which reports the client gets (default: none), when and to whom."
    )

    _timezone = field_validator("timezone")(known_time_zone)


class ClientUpdate(In):
    """`PATCH /clients/{id}`: the fields given change, the others stay."""

    model_config = ConfigDict(json_schema_extra=example(examples.client_update))

    name: SafeText | None = Field(None, min_length=1, max_length=200)
    timezone: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="IANA name. Changing it changes the date, and so the billing period and "
        "the rate agreement, of stops not yet invoiced near midnight.",
    )
    reporting: ReportingIn | None = Field(
        None,
        description="Which reports the client gets, when and to whom: the fields given change, "
        "the others stay.",
    )

    @field_validator("name", "timezone", "reporting")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, not null")
        return value

    _timezone = field_validator("timezone")(known_time_zone)


class ContactOut(Out):
    id: uuid.UUID
    kind: ContactKind
    name: str
    email: str
    phone: str | None


class DispatchHoldOut(Out):
    """New dispatches for the client are on hold: set by an unpaid-invoice case at the end of
    its dunning ladder, lifted when that invoice is paid or by an admin."""

    reason: str | None
    case_id: str | None
    since: datetime | None


class ClientOut(Out):
    id: str
    name: str
    timezone: str
    contacts: list[ContactOut]
    policy_overrides: dict[str, Any]
    created_at: datetime
    dispatch_hold: DispatchHoldOut | None = Field(
        None, description="Set while the client's new dispatches are on hold; null otherwise."
    )
    reporting: ReportingOut


# --- depots and pickup points -------------------------------------------------------------


class Dispatcher(In):
    name: SafeText = Field(min_length=1, max_length=200)
    email: Email
    phone: SafeText | None = Field(None, max_length=40)


class DispatcherOut(BaseModel):
    name: str
    email: str
    phone: str | None


class DepotCreate(In):
    model_config = ConfigDict(json_schema_extra=example(examples.depot))

    id: SafeId
    name: SafeText = Field(min_length=1, max_length=200)
    address: SafeText = Field(min_length=1, max_length=500)
    timezone: str = Field("UTC", max_length=64, description="IANA name, e.g. Europe/London.")
    dispatcher: Dispatcher = Field(description="The dispatcher on duty: receives escalations.")

    _timezone = field_validator("timezone")(known_time_zone)


class DepotOut(BaseModel):
    id: str
    name: str
    address: str
    timezone: str
    dispatcher: DispatcherOut


class PickupPointCreate(In):
    model_config = ConfigDict(json_schema_extra=example(examples.pickup_point))

    id: SafeId
    name: SafeText = Field(min_length=1, max_length=200)
    address: SafeText = Field(min_length=1, max_length=500)
    opening_hours: SafeText | None = Field(None, max_length=200)


class PickupPointOut(Out):
    id: str
    depot_id: str
    name: str
    address: str
    opening_hours: str | None


# --- drivers ------------------------------------------------------------------------------


class DriverCreate(In):
    model_config = ConfigDict(json_schema_extra=example(examples.driver))

    id: SafeId
    name: SafeText = Field(min_length=1, max_length=200)
    email: Email
    phone: SafeText | None = Field(None, max_length=40)
    depot_id: SafeId
    status: DriverStatus = DriverStatus.ACTIVE


class DriverOut(Out):
    id: str
    name: str
    email: str
    phone: str | None
    depot_id: str
    status: DriverStatus
    vehicle_type: VehicleType | None = None
    planned_start_date: date | None = None


class DriverDocumentOut(Out):
    """One of the driver's documents as the driver cases record it (`driver_documents`)."""

    document_id: str
    kind: DocumentKind
    status: ItemStatus
    expires_on: date | None = Field(description="For a licence, insurance or registration.")
    case_id: str = Field(description="The case that received or reviewed it.")
    updated_at: datetime


class DriverCaseOut(Out):
    """A driver case (onboarding or the compliance watch), as the case index has it."""

    case_id: str = Field(validation_alias="id")
    type: CaseType
    status: CaseStatus
    resolution: Resolution | None
    opened_at: datetime
    closed_at: datetime | None


class DriverDetail(DriverOut):
    documents: list[DriverDocumentOut] = Field(
        default_factory=list, description="Every document received, oldest first."
    )
    open_case: DriverCaseOut | None = Field(
        None, description="The onboarding case or compliance watch open for the driver."
    )
    cases: list[DriverCaseOut] = Field(
        default_factory=list, description="Every driver case, newest first."
    )


# --- API keys -----------------------------------------------------------------------------


class ApiKeyCreate(In):
    model_config = ConfigDict(json_schema_extra=example(examples.api_key))

    name: SafeText = Field(min_length=1, max_length=200)
    role: Role


class ApiKeyOut(Out):
    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret; shown once, store it now.")


# --- messages -----------------------------------------------------------------------------


class MessageRecipient(BaseModel):
    role: str
    name: str | None
    email: str


class MessageAttachment(BaseModel):
    """A document the message carried; the bytes stay in the document store."""

    id: str
    kind: str | None = None
    name: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    disposition: str = Field(
        "attachment", description="`inline`: an image the HTML shows as `cid:{content_id}`."
    )
    content_id: str | None = None


class MessageOut(BaseModel):
    id: uuid.UUID
    case_id: str
    key: str
    template: str
    backend: str
    recipient: MessageRecipient
    subject: str
    text_body: str
    html_body: str
    attachments: list[MessageAttachment] = Field(default_factory=list)
    status: str
    error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivery_problem: str | None = Field(
        None, description="bounce, dropped or spamreport, as SendGrid reported it after sending."
    )
