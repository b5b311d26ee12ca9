"""The SendGrid backend through send_message, against a fake SendGrid on a local port."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ApplicationError

from activities.email_backends import (
    EmailBackendUnavailable,
    OutboxSink,
    SendGridBackend,
    build_backend,
)
from activities.errors import EMAIL_REJECTED
from core.settings import Settings
from schemas.activities import Recipient
from schemas.enums import CaseStatus, CaseType, ContactKind, MessageStatus
from schemas.tables import Case
from tests.activities.conftest import FakeSendGrid, outbox
from tests.activities.test_messaging import messaging, notice

API_KEY = "SG.test-key-do-not-leak"


@pytest.fixture
def sendgrid_backend(fake_sendgrid: FakeSendGrid) -> SendGridBackend:
    return SendGridBackend(
        api_key=API_KEY,
        from_email="casedesk@example.com",
        from_name="casedesk",
        host=fake_sendgrid.url,
        timeout=30,  # generous: the suite runs on 2 busy cores; timeouts have their own test
    )


async def test_message_is_posted_to_sendgrid_mail_send(
    reference_data, fake_sendgrid, sendgrid_backend, activity_env
):
    await activity_env.run(messaging(reference_data, sendgrid_backend).send_message, notice())

    [request] = fake_sendgrid.requests
    payload = request["json"]
    assert request["path"] == "/v3/mail/send"
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert payload["personalizations"] == [
        {"to": [{"email": "ann@example.com", "name": "Ann Example"}]}
    ]
    assert payload["from"] == {"email": "casedesk@example.com", "name": "casedesk"}
    assert payload["subject"] == "We missed you: your parcel SHP-1 could not be delivered"
    assert [part["type"] for part in payload["content"]] == ["text/plain", "text/html"]
    assert payload["custom_args"] == {"message_key": "failed-delivery-SHP-1/notice-1"}


async def test_accepted_message_is_marked_sent_with_sendgrid_message_id(
    reference_data, fake_sendgrid, sendgrid_backend, activity_env
):
    result = await activity_env.run(
        messaging(reference_data, sendgrid_backend).send_message, notice()
    )

    [row] = await outbox(reference_data)
    assert result.status is MessageStatus.SENT
    assert (row.status, row.backend, row.provider_message_id) == (
        MessageStatus.SENT,
        "sendgrid",
        "sg-1",
    )


async def test_rate_limited_message_is_sent_once_on_the_next_attempt(
    reference_data, fake_sendgrid, sendgrid_backend, activity_env
):
    fake_sendgrid.respond_with(429)
    acts = messaging(reference_data, sendgrid_backend)

    with pytest.raises(EmailBackendUnavailable):
        await activity_env.run(acts.send_message, notice())
    [pending] = await outbox(reference_data)
    await activity_env.run(acts.send_message, notice())

    [row] = await outbox(reference_data)
    assert pending.status is MessageStatus.PENDING
    assert row.id == pending.id
    assert row.status is MessageStatus.SENT
    assert row.send_attempts == 2
    assert len(fake_sendgrid.requests) == 2


async def test_refused_message_fails_without_retry_and_is_marked_failed(
    reference_data, fake_sendgrid, sendgrid_backend, activity_env
):
    fake_sendgrid.respond_with(400)

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(messaging(reference_data, sendgrid_backend).send_message, notice())

    [row] = await outbox(reference_data)
    assert failure.value.type == EMAIL_REJECTED
    assert failure.value.non_retryable
    assert row.status is MessageStatus.FAILED
    assert row.error is not None and "400" in row.error
    assert API_KEY not in str(failure.value) and API_KEY not in row.error


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_api_key_is_retryable_and_logged_without_the_key(
    reference_data, fake_sendgrid, sendgrid_backend, activity_env, caplog, status
):
    # A revoked key is not this message's fault: failing it for good would escalate every case.
    fake_sendgrid.respond_with(status)
    acts = messaging(reference_data, sendgrid_backend)

    with (
        caplog.at_level(logging.ERROR, logger="activities.email_backends"),
        pytest.raises(EmailBackendUnavailable) as failure,
    ):
        await activity_env.run(acts.send_message, notice())

    [pending] = await outbox(reference_data)
    assert not isinstance(failure.value, ApplicationError)
    assert pending.status is MessageStatus.PENDING
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "SendGrid" in record.getMessage() and "key" in record.getMessage()
    assert str(status) in record.getMessage()
    assert API_KEY not in caplog.text and API_KEY not in str(failure.value)
    assert API_KEY not in (pending.error or "")

    await activity_env.run(acts.send_message, notice())  # the key was fixed
    [row] = await outbox(reference_data)
    assert (row.status, row.send_attempts) == (MessageStatus.SENT, 2)


@pytest.mark.parametrize("status", [400, 404, 413])
async def test_other_client_errors_stay_permanent(
    reference_data, fake_sendgrid, sendgrid_backend, activity_env, status
):
    fake_sendgrid.respond_with(status)

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(messaging(reference_data, sendgrid_backend).send_message, notice())

    assert failure.value.type == EMAIL_REJECTED and failure.value.non_retryable


async def test_server_error_is_retryable_and_leaves_the_row_pending(
    reference_data, fake_sendgrid, sendgrid_backend, activity_env
):
    fake_sendgrid.respond_with(500)

    with pytest.raises(EmailBackendUnavailable) as failure:
        await activity_env.run(messaging(reference_data, sendgrid_backend).send_message, notice())

    [row] = await outbox(reference_data)
    assert not isinstance(failure.value, ApplicationError)
    assert row.status is MessageStatus.PENDING
    assert API_KEY not in str(failure.value)


async def test_unreachable_sendgrid_is_retryable(reference_data, activity_env):
    backend = SendGridBackend(
        api_key=API_KEY, from_email="casedesk@example.com", host="http://127.0.0.1:9", timeout=2
    )

    with pytest.raises(EmailBackendUnavailable):
        await activity_env.run(messaging(reference_data, backend).send_message, notice())


def test_sendgrid_is_used_only_when_an_api_key_is_configured(monkeypatch):
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    monkeypatch.delenv("CASEDESK_SENDGRID_API_KEY", raising=False)
    assert isinstance(build_backend(Settings(_env_file=None)), OutboxSink)
    configured = build_backend(Settings(_env_file=None, SENDGRID_API_KEY=API_KEY))
    assert isinstance(configured, SendGridBackend)
    assert API_KEY not in repr(configured)


async def _index_case(sessions, *, client_id: str | None, depot_id: str | None) -> None:
    async with sessions() as session:
        session.add(
            Case(
                id="failed-delivery-SHP-1",
                type=CaseType.FAILED_DELIVERY,
                status=CaseStatus.WAITING_ON_CUSTOMER,
                business_key="SHP-1",
                client_id=client_id,
                depot_id=depot_id,
                subject="Failed delivery SHP-1",
                opened_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
            )
        )
        await session.commit()


async def test_a_clients_case_is_sent_in_the_clients_name_from_our_address(
    reference_data, fake_sendgrid, sendgrid_backend, activity_env
):
    await _index_case(reference_data, client_id="acme", depot_id="ldn-1")

    await activity_env.run(messaging(reference_data, sendgrid_backend).send_message, notice())

    [request] = fake_sendgrid.requests
    payload = request["json"]
    assert payload["from"] == {"email": "casedesk@example.com", "name": "Acme Retail via casedesk"}
    text, html = (part["value"] for part in payload["content"])
    assert text.startswith("Hello Ann Example,") and "<" not in text
    assert "max-width:600px" in html


async def test_a_message_for_a_client_contact_names_the_client_before_the_case_is_indexed(
    reference_data, fake_sendgrid, sendgrid_backend, activity_env
):
    to = Recipient(
        role="client_contact", client_id="acme", contact_kind=ContactKind.SHIPMENT_NOTIFICATIONS
    )

    await activity_env.run(messaging(reference_data, sendgrid_backend).send_message, notice(to))

    assert fake_sendgrid.requests[0]["json"]["from"]["name"] == "Acme Retail via casedesk"


async def test_a_case_without_a_client_is_sent_in_our_name(
    reference_data, fake_sendgrid, sendgrid_backend, activity_env
):
    await _index_case(reference_data, client_id=None, depot_id="ldn-1")
    to = Recipient(role="driver", driver_id="drv-7")

    await activity_env.run(messaging(reference_data, sendgrid_backend).send_message, notice(to))

    assert fake_sendgrid.requests[0]["json"]["from"] == {
        "email": "casedesk@example.com",
        "name": "casedesk",
    }
