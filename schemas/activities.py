"""Inputs and outputs of the activities (one model in, one model out)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.cases import Address, Customer, FailedAttempt, RedeliveryChoice
from schemas.documents import DocumentRef
from schemas.enums import ContactKind, MessageStatus, ShipmentStatus

RecipientRole = Literal[
    "customer", "dispatcher", "client_contact", "driver", "claims_desk", "onboarding_coordinator"
]


class Recipient(BaseModel):
    """Who a message goes to. Customers are addressed directly; everyone else by role, and the
    activity looks the address up at send time (contacts change while a case runs). Our own
    teams (claims_desk, onboarding_coordinator) need no id: the team's first contact by name."""

    role: RecipientRole
    email: str | None = Field(None, description="Customers only: the address on the shipment.")
    name: str | None = None
    depot_id: str | None = Field(None, description="dispatcher: whose depot.")
    client_id: str | None = Field(None, description="client_contact: which client.")
    contact_kind: ContactKind | None = Field(None, description="client_contact: which contact.")
    contact_id: uuid.UUID | None = Field(
        None,
        description="client_contact: this one of the client's contacts of `contact_kind` "
        "(default: the first by name).",
    )
    driver_id: str | None = Field(None, description="driver: which driver.")


class SignedLink(BaseModel):
    """Ask the activity to sign a customer link (the secret never enters the workflow)."""

    purpose: str
    expires_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class InlineImage(BaseModel):
    """A stored image shown in the HTML body as `<img src="cid:{content_id}">`."""

    content_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    document: DocumentRef


class MessageRequest(BaseModel):
    """`send_message`: render `template` for `to` and send it once.

    `key` is deterministic (workflow id + step): the outbox row is unique on it, so a retried
    activity or a replayed workflow never sends the same message twice."""

    key: str
    case_id: str
    template: str = Field(description="e.g. 'failed_delivery/customer_notice'")
    to: Recipient
    context: dict[str, Any] = Field(default_factory=dict)
    link: SignedLink | None = None
    attachments: list[DocumentRef] = Field(
        default_factory=list, description="Stored documents to attach (e.g. a claim package)."
    )
    inline_images: list[InlineImage] = Field(
        default_factory=list, description="Stored images the HTML body shows by content id."
    )


class MessageResult(BaseModel):
    message_id: str
    key: str
    status: MessageStatus
    recipient_email: str
    duplicate: bool = Field(False, description="The key was sent before; nothing was sent now.")


class AttemptRecord(BaseModel):
    """`record_failed_attempt`: upsert the shipment and store the attempt with its fee."""

    case_id: str
    shipment_id: str
    client_id: str
    depot_id: str
    customer: Customer
    address: Address
    attempt: FailedAttempt
    fee_cents: int
    currency: str


class RedeliveryBooking(BaseModel):
    """`schedule_redelivery`: put the chosen plan on the shipment."""

    case_id: str
    shipment_id: str
    depot_id: str
    choice: RedeliveryChoice
    decided_at: datetime


class ShipmentStatusUpdate(BaseModel):
    """`update_shipment_status`: delivered, returning to sender, …"""

    case_id: str
    shipment_id: str
    status: ShipmentStatus
    at: datetime
