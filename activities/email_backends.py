"""Email backends: where a rendered message goes once its outbox row is written.

`OutboxSink` (the default) keeps nothing but the outbox row, which the API and the console
show. `SendGridBackend` hands the message to SendGrid. Both raise one of two exceptions so
`send_message` can tell a permanent refusal from a failure worth retrying.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import urllib.error
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import sendgrid
from python_http_client.exceptions import HTTPError
from sendgrid.helpers.mail import (
    Attachment,
    ContentId,
    CustomArg,
    Disposition,
    FileContent,
    FileName,
    FileType,
    From,
    Mail,
    To,
)

from core.settings import Settings

logger = logging.getLogger(__name__)

# A bad or revoked API key: not the message's fault, and every message would fail the same way.
# Retried (Temporal backs off) rather than failing each message for good and escalating every
# case, until someone fixes the key.
KEY_REJECTED_STATUSES = frozenset({401, 403})


class EmailAttachment(NamedTuple):
    """A file sent with the message: its bytes were checked against the document's checksum.
    With a `content_id` it is an inline image the HTML shows as `cid:{content_id}`."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered message, addressed; `key` is the outbox key (unique per message)."""

    key: str
    message_id: str
    to_email: str
    to_name: str | None
    subject: str
    text: str
    html: str
    attachments: tuple[EmailAttachment, ...] = ()
    from_name: str | None = None
    """The sender's display name for this message (e.g. "Demo Shop Ltd via casedesk"); the
    address is always the operator's. None: the backend's own name."""


class EmailRejected(Exception):
    """The provider refused the message for good (bad address, bad request).
    Retrying would send the same request and get the same answer."""


class EmailBackendUnavailable(Exception):
    """The provider could not take the message now (rate limit, outage, timeout, or our API
    key is rejected until an operator fixes it); retry."""


class EmailBackend(Protocol):
    name: str

    async def send(self, email: OutgoingEmail) -> str:
        """Hand the message over and return the provider's message id."""
        ...


class OutboxSink:
    """Delivers nothing: the outbox row is the delivered message (embedded/local default).
    Attachments and inline images stay in the document store; the row names them (an inline
    image with its content id)."""

    name = "outbox"

    async def send(self, email: OutgoingEmail) -> str:
        return f"outbox-{email.message_id}"


class SendGridBackend:
    """Sends through the SendGrid v3 Mail Send API with the official (blocking) library,
    run in a thread so the worker's event loop keeps going."""

    name = "sendgrid"

    def __init__(
        self,
        *,
        api_key: str,
        from_email: str,
        from_name: str | None = None,
        host: str = "https://api.sendgrid.com",
        timeout: float = 10.0,
    ) -> None:
        self._client = sendgrid.SendGridAPIClient(api_key=api_key, host=host)
        self._from = From(from_email, from_name)
        self._timeout = timeout

    def __repr__(self) -> str:  # never show the API key, not even in a debugger
        return f"SendGridBackend(host={self._client.host!r})"

    def _mail(self, email: OutgoingEmail) -> Mail:
        sender = From(self._from.email, email.from_name or self._from.name)
        mail = Mail(
            from_email=sender,
            to_emails=To(email.to_email, email.to_name),
            subject=email.subject,
            plain_text_content=email.text,
            html_content=email.html,
        )
        # Comes back on SendGrid's event webhook, so a bounce can be matched to the outbox row.
        mail.custom_arg = CustomArg("message_key", email.key)
        # add_attachment inserts at the front of the list: add them last first to keep order.
        for attachment in reversed(email.attachments):
            inline = attachment.content_id is not None
            mail.add_attachment(
                Attachment(
                    FileContent(base64.b64encode(attachment.data).decode("ascii")),
                    FileName(attachment.filename),
                    FileType(attachment.content_type),
                    Disposition("inline" if inline else "attachment"),
                    ContentId(attachment.content_id) if inline else None,
                )
            )
        return mail

    def _post(self, payload: dict[str, object]) -> str:
        try:
            response = self._client.client.mail.send.post(
                request_body=payload, timeout=self._timeout
            )
        except HTTPError as err:
            detail = _error_detail(err)
            if err.status_code in KEY_REJECTED_STATUSES:
                logger.error(
                    "SendGrid rejected the API key (%s): check SENDGRID_API_KEY; "
                    "messages are retried until it is fixed",
                    err.status_code,
                )
                raise EmailBackendUnavailable(f"SendGrid rejected the API key: {detail}") from None
            if err.status_code == 429 or err.status_code >= 500:
                raise EmailBackendUnavailable(f"SendGrid answered {detail}") from None
            raise EmailRejected(f"SendGrid refused the message: {detail}") from None
        except OSError as err:  # URLError, timeouts, refused or reset connections
            reason = err.reason if isinstance(err, urllib.error.URLError) else err
            raise EmailBackendUnavailable(f"SendGrid unreachable: {reason}") from None
        return response.headers.get("X-Message-Id") or ""

    async def send(self, email: OutgoingEmail) -> str:
        payload = self._mail(email).get()
        return await asyncio.to_thread(self._post, payload)


def _error_detail(err: HTTPError) -> str:
    """Status, reason and the start of SendGrid's error body (it never echoes the key)."""
    body = err.body.decode("utf-8", "replace") if isinstance(err.body, bytes) else str(err.body)
    return f"{err.status_code} {err.reason}: {body[:500]}".rstrip(": ")


def build_backend(settings: Settings) -> EmailBackend:
    """SendGrid when `SENDGRID_API_KEY` is set, otherwise the outbox sink."""
    if settings.sendgrid_api_key is None:
        return OutboxSink()
    return SendGridBackend(
        api_key=settings.sendgrid_api_key.get_secret_value(),
        from_email=settings.email_from,
        from_name=settings.email_from_name,
        host=settings.sendgrid_host,
        timeout=settings.sendgrid_timeout_seconds,
    )
