"""The SendGrid backend through send_message, against a fake SendGrid on a local port."""

from __future__ import annotations

import logging

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
from schemas.enums import MessageStatus
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
