"""`POST /webhooks/sendgrid/events`: SendGrid's Event Webhook (signed, no API key).

SendGrid signs each batch with ECDSA (P-256, SHA-256) over the timestamp header followed by
the raw body; the public key is `CASEDESK_SENDGRID_WEBHOOK_PUBLIC_KEY` (as SendGrid shows it:
base64 DER, or PEM). A batch without a valid signature, or whose timestamp is older than
`CASEDESK_SENDGRID_WEBHOOK_MAX_AGE_SECONDS` (or as far in the future), is refused with 401.

Each event counts once, by its `sg_event_id`. A bounce, a drop or a spam report marks the
outbox message (`delivery_problem`) and escalates its case to a person through the case's
`escalate` update, so it shows on the timeline; the reason names the message by its template
and recipient role, never the address. When the case cannot be reached (Temporal down, no
answer in time) the batch is answered 503 and the event left unrecorded: SendGrid retries it.

A `processed` event for a message key whose SendGrid message id is not the one the outbox
recorded means SendGrid accepted that message twice: a send was retried after its worker
stopped between SendGrid's answer and marking the outbox row sent (the at-least-once gap the
outbox cannot close). The message is marked `duplicate` and the case gets a note saying so,
so the second copy is known rather than silent.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Request
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.casework import run_update
from api.deps import CaseRef, SessionDep, SettingsDep, TemporalDep, Timeouts, TimeoutsDep
from api.errors import Problem
from core.settings import Settings
from schemas import contracts
from schemas.cases import EscalateInput, NoteInput
from schemas.tables import Message, SendgridEvent

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_BODY = 1024 * 1024
UNDELIVERED = {
    "bounce": "bounced",
    "dropped": "was dropped by SendGrid",
    "spamreport": "was reported as spam",
}
BY = "sendgrid"


def _public_key(settings: Settings) -> ec.EllipticCurvePublicKey:
    configured = settings.sendgrid_webhook_public_key
    if configured is None:
        raise Problem(403, "the SendGrid Event Webhook is not configured on this server")
    text = configured.get_secret_value().strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text))
    except (ValueError, binascii.Error) as err:
        raise Problem(403, "the SendGrid webhook public key is not a valid key") from err
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Problem(403, "the SendGrid webhook public key is not an ECDSA key")
    return key


def verify(settings: Settings, signature: str | None, timestamp: str | None, body: bytes) -> None:
    """401 unless the batch is signed by SendGrid's key and recent."""
    key = _public_key(settings)
    if not signature or not timestamp:
        raise Problem(401, f"the {SIGNATURE} and {TIMESTAMP} headers are required")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise Problem(401, f"{TIMESTAMP} is not a Unix time")
    age = abs(time.time() - int(timestamp))
    if age > settings.sendgrid_webhook_max_age_seconds:
        raise Problem(401, "the batch's timestamp is too old (or in the future): refused")
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise Problem(401, "the batch's signature does not verify") from None


def _events(body: bytes) -> list[dict[str, Any]]:
    try:
        events = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "the body is not a JSON array of events") from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Problem(400, "the body is not a JSON array of events")
    return events


async def _record(session: AsyncSession, event: dict[str, Any]) -> SendgridEvent | None:
    """The event, recorded now; None when it was handled before (or names no id)."""
    event_id = event.get("sg_event_id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 100:
        return None
    key = event.get("message_key")
    row = SendgridEvent(
        sg_event_id=event_id,
        event=str(event.get("event", ""))[:32],
        message_key=key[:300] if isinstance(key, str) else None,
        received_at=datetime.now(UTC),
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return None
    return row


@router.post(
    "/sendgrid/events",
    summary="SendGrid's Event Webhook (signed by SendGrid, no API key)",
    description="A JSON array of SendGrid events. Signed with ECDSA over the "
    f"`{TIMESTAMP}` header and the body (`{SIGNATURE}`); 401 for a missing or wrong "
    "signature or a stale timestamp. Each `sg_event_id` counts once. bounce, dropped and "
    "spamreport mark the message and escalate its case (on the timeline); a second "
    "`processed` of one message key marks it `duplicate` and notes it on the case.",
    responses={
        200: {"description": "The batch was handled (events seen before are skipped)."},
        401: {"description": "Not signed by SendGrid, or stale."},
    },
)
async def sendgrid_events(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    timeouts: TimeoutsDep,
) -> dict[str, int]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Problem(413, f"a batch is at most {MAX_BODY} bytes")
    verify(settings, request.headers.get(SIGNATURE), request.headers.get(TIMESTAMP), body)
    events = _events(body)
    handled = escalated = duplicates = 0
    for event in events:
        recorded = await _record(session, event)
        if recorded is None:
            continue
        handled += 1
        if recorded.event == "processed" and recorded.message_key is not None:
            duplicates += await _check_duplicate(session, recorded, event, temporal, timeouts)
            continue
        problem = UNDELIVERED.get(recorded.event)
        if problem is None or recorded.message_key is None:
            continue
        message = await _message(session, recorded.message_key)
        if message is None:
            continue
        try:
            if await _escalate(message, problem, recorded.event, temporal, timeouts):
                escalated += 1
        except Problem as failure:
            if failure.status not in (503, 504):
                raise
            await session.delete(recorded)  # not handled: SendGrid sends the batch again
            await session.commit()
            raise
        message.delivery_problem = recorded.event
        message.delivery_problem_at = recorded.received_at
        session.add(message)
        await session.commit()
    return {
        "received": len(events),
        "handled": handled,
        "escalated": escalated,
        "duplicates": duplicates,
    }


async def _message(session: AsyncSession, key: str) -> Message | None:
    found: Message | None = (await session.exec(select(Message).where(Message.key == key))).first()
    return found


async def _escalate(
    message: Message, problem: str, event: str, temporal: Client, timeouts: Timeouts
) -> bool:
    """Escalate the message's case; False when the case takes no escalation now (closed)."""
    reason = (
        f"The {message.template} email to the {message.recipient_role} {problem} "
        f"(SendGrid {event}): reach them another way"
    )
    case = CaseRef(message.case_id, None, temporal)
    try:
        await run_update(case, contracts.ESCALATE, EscalateInput(reason=reason, by=BY), timeouts)
    except Problem as refused:
        if refused.status in (404, 409):  # closed, or gone: nobody to escalate to
            return False
        raise
    return True


def sendgrid_id(sg_message_id: object) -> str:
    """The `X-Message-Id` SendGrid answered the send with: the event's id up to its first dot."""
    return str(sg_message_id or "").split(".", 1)[0]


async def _check_duplicate(
    session: AsyncSession,
    recorded: SendgridEvent,
    event: dict[str, Any],
    temporal: Client,
    timeouts: Timeouts,
) -> int:
    """1 when this `processed` event is a second acceptance of the message's key (noted on
    the case), else 0."""
    assert recorded.message_key is not None
    message = await _message(session, recorded.message_key)
    accepted = sendgrid_id(event.get("sg_message_id"))
    if (
        message is None
        or message.backend != "sendgrid"
        or not message.provider_message_id
        or not accepted
        or accepted == sendgrid_id(message.provider_message_id)
    ):
        return 0
    note = NoteInput(
        text=f"The {message.template} email to the {message.recipient_role} was accepted by "
        "SendGrid twice (a send retried after its worker stopped mid-send): the recipient may "
        "receive it twice.",
        by=BY,
    )
    try:
        await run_update(
            CaseRef(message.case_id, None, temporal), contracts.ADD_NOTE, note, timeouts
        )
    except Problem as refused:
        if refused.status in (503, 504):
            await session.delete(recorded)  # not handled: SendGrid sends the batch again
            await session.commit()
            raise
        if refused.status not in (404, 409):  # closed or gone: the message is marked anyway
            raise
    message.delivery_problem = "duplicate"
    message.delivery_problem_at = recorded.received_at
    session.add(message)
    await session.commit()
    return 1
