"""SendGrid's Event Webhook: signed batches only, each event once, and an email that did not
arrive escalates its case to a person, on the timeline."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr
from sqlmodel import select

from api.main import create_app
from core.settings import Settings
from core.temporal import connect
from schemas.enums import MessageStatus
from schemas.tables import Message, SendgridEvent
from tests.api.conftest import Api, assert_problem

PATH = "/webhooks/sendgrid/events"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def settings(settings: Settings) -> Settings:
    public = SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return settings.model_copy(
        update={"sendgrid_webhook_public_key": SecretStr(base64.b64encode(public).decode())}
    )


def signed(
    events: list[dict[str, Any]], *, at: int | None = None, key: Any = SENDGRID_KEY
) -> dict[str, Any]:
    body = json.dumps(events).encode()
    timestamp = str(at if at is not None else int(time.time()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "content": body,
        "headers": {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    }


async def _notice(api: Api) -> tuple[str, str]:
    """A case waiting on the customer, and the key of the notice it emailed them."""
    case_id = (await api.open_case()).json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")
    await api.customer_link(case_id)  # the notice is stored
    return case_id, f"{case_id}/a1/customer-notice"


def event(kind: str, message_key: str, event_id: str) -> dict[str, Any]:
    return {
        "email": "ada@example.com",
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": "abc.filter0001",
        "timestamp": int(time.time()),
        "message_key": message_key,
        "reason": "550 5.1.1 mailbox unknown",
    }


async def test_a_bounce_marks_the_message_and_escalates_the_case_once(api: Api):
    case_id, key = await _notice(api)
    batch = signed([event("bounce", key, "ev-1")])

    first = await api.raw.post(PATH, **batch)
    again = await api.raw.post(PATH, **batch)  # SendGrid retries a batch

    assert first.status_code == 200, first.text
    assert first.json() == {"received": 1, "handled": 1, "escalated": 1, "duplicates": 0}
    assert again.json() == {"received": 1, "handled": 0, "escalated": 0, "duplicates": 0}
    detail = await api.wait_for(case_id)
    assert detail["escalated"] is True
    escalations = [e for e in detail["timeline"] if e["kind"] == "escalated"]
    assert len(escalations) == 1 and escalations[0]["actor"] == "sendgrid"
    assert "email to the customer bounced (SendGrid bounce)" in escalations[0]["summary"]
    assert "ada@example.com" not in escalations[0]["summary"]  # no address in the history
    messages = (await api.get("/messages", params={"case_id": case_id})).json()["items"]
    notice = next(m for m in messages if m["key"] == key)
    assert notice["delivery_problem"] == "bounce" and notice["status"] == "sent"


@pytest.mark.parametrize("kind", ["dropped", "spamreport"])
async def test_a_drop_or_a_spam_report_escalates_too(api: Api, kind: str):
    case_id, key = await _notice(api)

    response = await api.raw.post(PATH, **signed([event(kind, key, f"ev-{kind}")]))

    assert response.json()["escalated"] == 1
    assert (await api.wait_for(case_id))["escalated"] is True


async def test_a_delivered_event_is_recorded_and_changes_nothing(api: Api):
    case_id, key = await _notice(api)

    response = await api.raw.post(PATH, **signed([event("delivered", key, "ev-ok")]))

    assert response.json() == {"received": 1, "handled": 1, "escalated": 0, "duplicates": 0}
    assert (await api.get(f"/cases/{case_id}")).json()["escalated"] is False


async def test_a_batch_signed_with_another_key_is_401(api: Api):
    _, key = await _notice(api)
    forged = signed([event("bounce", key, "ev-x")], key=ec.generate_private_key(ec.SECP256R1()))

    assert_problem(await api.raw.post(PATH, **forged), 401)


async def test_a_stale_batch_is_401(api: Api, settings: Settings):
    _, key = await _notice(api)
    old = int(time.time()) - settings.sendgrid_webhook_max_age_seconds - 60

    assert_problem(await api.raw.post(PATH, **signed([event("bounce", key, "e")], at=old)), 401)


async def test_a_tampered_body_is_401(api: Api):
    _, key = await _notice(api)
    batch = signed([event("delivered", key, "ev-t")])
    batch["content"] = batch["content"].replace(b"delivered", b"bounce")

    assert_problem(await api.raw.post(PATH, **batch), 401)


async def test_an_unsigned_batch_is_401(api: Api):
    response = await api.raw.post(PATH, json=[{"sg_event_id": "x", "event": "bounce"}])

    assert_problem(response, 401)


async def test_with_temporal_unreachable_the_batch_is_503_and_sent_again_later(
    settings, engine, sessions, blackhole, reference_data
):
    async with sessions() as session:
        session.add(
            Message(
                key="failed-delivery-S-1/a1/customer-notice",
                case_id="failed-delivery-S-1",
                template="failed_delivery/customer_notice",
                recipient_role="customer",
                recipient_email="ada@example.com",
                subject="Your parcel",
                text_body="",
                html_body="",
                status=MessageStatus.SENT,
                backend="sendgrid",
            )
        )
        await session.commit()
    app = create_app(
        settings,
        temporal=await connect(
            settings.model_copy(update={"temporal_address": blackhole}), lazy=True
        ),
        engine=engine,
    )
    bounce = event("bounce", "failed-delivery-S-1/a1/customer-notice", "ev-retry")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.post(PATH, **signed([bounce]))

    assert_problem(response, 503)
    async with sessions() as session:
        assert (await session.exec(select(SendgridEvent))).all() == []  # not handled yet
        notice = (await session.exec(select(Message))).one()
    assert notice.delivery_problem is None


async def _sent_through_sendgrid(sessions: Any, key: str, provider_id: str) -> None:
    """As the SendGrid backend leaves the row: its provider's message id recorded."""
    async with sessions() as session:
        row = (await session.exec(select(Message).where(Message.key == key))).one()
        row.backend, row.provider_message_id = "sendgrid", provider_id
        session.add(row)
        await session.commit()


async def test_a_second_acceptance_of_one_message_key_is_noted_on_the_case(api: Api, sessions):
    case_id, key = await _notice(api)
    await _sent_through_sendgrid(sessions, key, "first-id")
    own = {**event("processed", key, "ev-p1"), "sg_message_id": "first-id.filter0001.1"}
    other = {**event("processed", key, "ev-p2"), "sg_message_id": "second-id.filter0002.1"}

    first = await api.raw.post(PATH, **signed([own]))
    second = await api.raw.post(PATH, **signed([other]))

    assert first.json()["duplicates"] == 0  # the send the outbox knows
    assert second.json()["duplicates"] == 1
    detail = await api.wait_for(case_id)
    notes = [e for e in detail["timeline"] if e["kind"] == "note" and e["actor"] == "sendgrid"]
    assert len(notes) == 1 and "accepted by SendGrid twice" in notes[0]["summary"]
    messages = (await api.get("/messages", params={"case_id": case_id})).json()["items"]
    assert next(m for m in messages if m["key"] == key)["delivery_problem"] == "duplicate"


async def test_processed_events_of_the_outbox_sink_are_never_duplicates(api: Api):
    _, key = await _notice(api)  # the test backend is the outbox sink

    response = await api.raw.post(PATH, **signed([event("processed", key, "ev-sink")]))

    assert response.json()["duplicates"] == 0
