"""Messaging: render a Jinja2 email (HTML + text), write the outbox row, send, mark sent.

The outbox row is written before the backend is called and is unique on the message key, so a
retried activity (or a replayed workflow) finds the row and never sends a message twice.
The row is created with `INSERT … ON CONFLICT (key) DO NOTHING` and claimed for this attempt
with `UPDATE … WHERE status <> 'sent'`: each is one atomic statement on SQLite too (which
ignores FOR UPDATE), so two concurrent attempts never create two rows, and an attempt that
comes after another one's send succeeded sends nothing.
What is left is the unavoidable at-least-once gap: if the worker dies between the provider's
"accepted" and marking the row sent (or two attempts overlap while both are still sending),
the message goes out again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.documents import load_document
from activities.email_backends import (
    EmailAttachment,
    EmailBackend,
    EmailBackendUnavailable,
    EmailRejected,
    OutgoingEmail,
    build_backend,
)
from activities.errors import EMAIL_REJECTED, RECIPIENT_NOT_FOUND, TEMPLATE_ERROR
from activities.heartbeat import heartbeating
from activities.rendering import EmailRenderer, RenderedEmail, TemplateRenderError
from activities.sql import clip, insert_ignore
from core.db import SessionFactory
from core.documents import DocumentStore, LocalDocumentStore
from core.security import sign_link
from core.settings import Settings
from core.uploads import download_name
from schemas.activities import (
    InlineImage,
    MessageRequest,
    MessageResult,
    Recipient,
    RecipientRole,
)
from schemas.documents import DocumentRef
from schemas.enums import MessageStatus
from schemas.tables import (
    Case,
    Client,
    ClientContact,
    Depot,
    Driver,
    Message,
    TeamContact,
    TeamRole,
)


@dataclass(frozen=True)
class ResolvedRecipient:
    email: str
    name: str | None


def _not_found(message: str) -> ApplicationError:
    return ApplicationError(message, type=RECIPIENT_NOT_FOUND, non_retryable=True)


Resolver = Callable[[AsyncSession, Recipient], Awaitable[ResolvedRecipient]]


async def _customer(session: AsyncSession, to: Recipient) -> ResolvedRecipient:
    if not to.email:
        raise _not_found("customer recipient has no email address")
    return ResolvedRecipient(to.email, to.name)


async def _dispatcher(session: AsyncSession, to: Recipient) -> ResolvedRecipient:
    if not to.depot_id:
        raise _not_found("dispatcher recipient needs a depot_id")
    depot = await session.get(Depot, to.depot_id)
    if depot is None:
        raise _not_found(f"depot {to.depot_id!r} not found (dispatcher)")
    if not depot.dispatcher_email:
        raise _not_found(f"depot {to.depot_id!r} has no dispatcher email on file")
    return ResolvedRecipient(depot.dispatcher_email, depot.dispatcher_name)


async def _client_contact(session: AsyncSession, to: Recipient) -> ResolvedRecipient:
    if not (to.client_id and to.contact_kind):
        raise _not_found("client_contact recipient needs client_id and contact_kind")
    statement = (
        select(ClientContact)
        .where(ClientContact.client_id == to.client_id, ClientContact.kind == to.contact_kind)
        .order_by(ClientContact.name)  # type: ignore[arg-type]
        .limit(1)
    )
    if to.contact_id is not None:  # that contact, while it is still the client's of that kind
        statement = statement.where(ClientContact.id == to.contact_id)
    contact = (await session.exec(statement)).first()
    if contact is None:
        kind = to.contact_kind.value
        raise _not_found(f"client {to.client_id!r} has no {kind!r} contact on file")
    return ResolvedRecipient(contact.email, contact.name)


async def _driver(session: AsyncSession, to: Recipient) -> ResolvedRecipient:
    if not to.driver_id:
        raise _not_found("driver recipient needs a driver_id")
    driver = await session.get(Driver, to.driver_id)
    if driver is None:
        raise _not_found(f"driver {to.driver_id!r} not found")
    return ResolvedRecipient(driver.email, driver.name)


def _team(role: TeamRole, label: str) -> Resolver:
    """One of our teams: its first contact by name."""

    async def resolve(session: AsyncSession, to: Recipient) -> ResolvedRecipient:
        statement = (
            select(TeamContact)
            .where(TeamContact.role == role)
            .order_by(TeamContact.name)  # type: ignore[arg-type]
            .limit(1)
        )
        contact = (await session.exec(statement)).first()
        if contact is None:
            raise _not_found(f"no {label} contact on file")
        return ResolvedRecipient(contact.email, contact.name)

    return resolve


RESOLVERS: Mapping[RecipientRole, Resolver] = {
    "customer": _customer,
    "dispatcher": _dispatcher,
    "client_contact": _client_contact,
    "driver": _driver,
    "claims_desk": _team(TeamRole.CLAIMS_DESK, "claims desk"),
    "onboarding_coordinator": _team(TeamRole.ONBOARDING_COORDINATOR, "onboarding coordinator"),
}
"""How each recipient role is looked up (tests check every `RecipientRole` has one)."""


@dataclass(frozen=True)
class CaseSetting:
    """Whose case a message is about and where: the client's name for the sender's display
    name ("Demo Shop Ltd via casedesk"), the zone its times are shown in."""

    client_name: str | None
    zone_name: str | None


async def case_setting(session: AsyncSession, request: MessageRequest) -> CaseSetting:
    """From the case index row, else from the recipient and the context (the index row may
    be written after the first message). The zone is the context's `timezone` if it names
    one, else the depot's (where the case happens), else the client's."""
    case = await session.get(Case, request.case_id)
    context, to = request.context, request.to
    client_id = (case and case.client_id) or to.client_id or _text(context.get("client_id"))
    depot_id = (case and case.depot_id) or to.depot_id or _text(context.get("depot_id"))
    if depot_id is None and to.driver_id:
        driver = await session.get(Driver, to.driver_id)
        depot_id = driver.depot_id if driver is not None else None
    client = await session.get(Client, client_id) if client_id else None
    depot = await session.get(Depot, depot_id) if depot_id else None
    zone_name = (
        _text(context.get("timezone"))
        or (depot.timezone if depot is not None else None)
        or (client.timezone if client is not None else None)
    )
    return CaseSetting(client.name if client is not None else None, zone_name)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def resolve_recipient(session: AsyncSession, to: Recipient) -> ResolvedRecipient:
    """Look the address up now: contacts change while a case runs. Error messages name the
    role and the business ids only, never a person's name or address."""
    resolver = RESOLVERS.get(to.role)
    if resolver is None:
        raise _not_found(f"unknown recipient role {to.role!r}")
    return await resolver(session, to)


class MessagingActivities:
    """Sends case emails. Built once in worker.py with its clients (see `from_settings`)."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        renderer: EmailRenderer,
        backend: EmailBackend,
        link_secret: bytes,
        public_base_url: str,
        trace_url_for: Callable[[str], str],
        documents: DocumentStore | None = None,
        sender_name: str = "casedesk",
    ) -> None:
        self._sessions = sessions
        self._documents = documents
        self._renderer = renderer
        self._backend = backend
        self._link_secret = link_secret
        self._public_base_url = public_base_url.rstrip("/")
        self._trace_url_for = trace_url_for
        self._sender_name = sender_name

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        sessions: SessionFactory,
        backend: EmailBackend | None = None,
        documents: DocumentStore | None = None,
    ) -> MessagingActivities:
        return cls(
            documents=documents or LocalDocumentStore.from_settings(settings),
            sessions=sessions,
            renderer=EmailRenderer(),
            backend=backend or build_backend(settings),
            link_secret=settings.resolved_link_secret,
            public_base_url=settings.resolved_public_base_url,
            trace_url_for=settings.trace_url,
            sender_name=settings.email_from_name,
        )

    @activity.defn
    async def send_message(self, request: MessageRequest) -> MessageResult:
        async with heartbeating():
            return await self._send_message(request)

    async def _send_message(self, request: MessageRequest) -> MessageResult:
        async with self._sessions() as session:
            row = await self._outbox_row(session, request.key)
            if row is not None and row.status is MessageStatus.SENT:
                return self._result(row, duplicate=True)
            recipient = await resolve_recipient(session, request.to)
            setting = await case_setting(session, request)
            rendered = self._render(request, recipient, setting)
            attachments = await self._attachments(request.attachments)
            attachments += await self._inline_images(request.inline_images)
            content = self._content(request, recipient, rendered)
            row, claimed = await self._claim_outbox_row(session, request.key, content)
            if not claimed:  # another attempt sent it meanwhile
                return self._result(row, duplicate=True)

            try:
                provider_id = await self._backend.send(
                    OutgoingEmail(
                        key=row.key,
                        message_id=str(row.id),
                        to_email=row.recipient_email,
                        to_name=row.recipient_name,
                        from_name=self.sender_name(setting),
                        subject=row.subject,
                        text=row.text_body,
                        html=row.html_body,
                        attachments=attachments,
                    )
                )
            except EmailRejected as err:
                row.status = MessageStatus.FAILED
                row.error = clip(str(err), 2000)
                session.add(row)
                await session.commit()
                raise ApplicationError(str(err), type=EMAIL_REJECTED, non_retryable=True) from None
            except EmailBackendUnavailable as err:
                row.error = clip(f"attempt {row.send_attempts}: {err}", 2000)
                session.add(row)
                await session.commit()
                raise  # retryable: the row stays pending and the next attempt reuses it

            row.status = MessageStatus.SENT
            row.sent_at = datetime.now(UTC)
            row.provider_message_id = clip(provider_id, 200) or None
            row.error = None
            session.add(row)
            await session.commit()
            activity.logger.info("message %s sent via %s", row.key, self._backend.name)
            return self._result(row, duplicate=False)

    @staticmethod
    async def _outbox_row(session: AsyncSession, key: str) -> Message | None:
        statement = (
            select(Message).where(Message.key == key).execution_options(populate_existing=True)
        )
        return (await session.exec(statement)).first()

    @classmethod
    async def _claim_outbox_row(
        cls, session: AsyncSession, key: str, content: dict[str, Any]
    ) -> tuple[Message, bool]:
        """Create the row if missing and (re)write it for this attempt unless it was sent
        already, then commit: the row exists before anything is sent. Two single statements,
        so concurrent attempts cannot both insert, nor rewrite a row another one sent.

        Returns the row and whether this attempt claimed it (False: it is sent)."""
        await session.exec(
            insert_ignore(session, Message, "key").values(
                id=uuid.uuid4(),
                key=key,
                send_attempts=0,
                created_at=datetime.now(UTC),
                **content,
            )
        )
        claimed = await session.exec(
            update(Message)
            .where(col(Message.key) == key, col(Message.status) != MessageStatus.SENT)
            .values(**content, send_attempts=col(Message.send_attempts) + 1)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        row = await cls._outbox_row(session, key)
        assert row is not None  # inserted above, and outbox rows are never deleted
        return row, bool(claimed.rowcount)

    def sender_name(self, setting: CaseSetting) -> str:
        """The From display name: "Demo Shop Ltd via casedesk" for a client's case (people
        know the shop, not us), ours alone otherwise; the address is always ours."""
        if setting.client_name:
            return f"{setting.client_name} via {self._sender_name}"
        return self._sender_name

    def _render(
        self, request: MessageRequest, recipient: ResolvedRecipient, setting: CaseSetting
    ) -> RenderedEmail:
        context: dict[str, Any] = {
            "timezone": setting.zone_name or "UTC",
            **request.context,
            "recipient_name": recipient.name,
            "case_id": request.case_id,
            "trace_url": self._trace_url_for(request.case_id),
        }
        if request.link is not None:
            token = sign_link(
                self._link_secret,
                purpose=request.link.purpose,
                case_id=request.case_id,
                expires_at=request.link.expires_at,
                **request.link.data,
            )
            context["link_url"] = f"{self._public_base_url}/r/{token}"
            context["link_expires_at"] = request.link.expires_at
        try:
            return self._renderer.render(request.template, context)
        except TemplateRenderError as err:
            raise ApplicationError(str(err), type=TEMPLATE_ERROR, non_retryable=True) from None

    async def _attachments(self, refs: list[DocumentRef]) -> tuple[EmailAttachment, ...]:
        """Every attachment read and checked before the outbox row is written: a missing or
        altered document fails the message for good and nothing is sent."""
        return tuple(
            [
                EmailAttachment(
                    download_name(ref), ref.content_type, await load_document(self._documents, ref)
                )
                for ref in refs
            ]
        )

    async def _inline_images(self, images: list[InlineImage]) -> tuple[EmailAttachment, ...]:
        """The images the HTML shows by content id, read and checked like attachments."""
        return tuple(
            [
                EmailAttachment(
                    download_name(image.document),
                    image.document.content_type,
                    await load_document(self._documents, image.document),
                    image.content_id,
                )
                for image in images
            ]
        )

    def _content(
        self, request: MessageRequest, recipient: ResolvedRecipient, rendered: RenderedEmail
    ) -> dict[str, Any]:
        """The row's content; an earlier try's row is rewritten (contacts may have changed)."""
        return {
            "case_id": request.case_id,
            "template": request.template,
            "recipient_role": request.to.role,
            "recipient_name": clip(recipient.name, 200),
            "recipient_email": recipient.email,
            "subject": rendered.subject[:300],
            "text_body": rendered.text,
            "html_body": rendered.html,
            "attachments": [
                {
                    "id": ref.id,
                    "kind": ref.kind.value,
                    "name": download_name(ref),
                    "content_type": ref.content_type,
                    "sha256": ref.sha256,
                    "size_bytes": ref.size_bytes,
                }
                for ref in request.attachments
            ]
            + [
                {
                    "id": image.document.id,
                    "kind": image.document.kind.value,
                    "name": download_name(image.document),
                    "content_type": image.document.content_type,
                    "sha256": image.document.sha256,
                    "size_bytes": image.document.size_bytes,
                    "disposition": "inline",
                    "content_id": image.content_id,
                }
                for image in request.inline_images
            ]
            or None,
            "backend": self._backend.name,
            "status": MessageStatus.PENDING,
            "error": None,
        }

    @staticmethod
    def _result(row: Message, *, duplicate: bool) -> MessageResult:
        return MessageResult(
            message_id=str(row.id),
            key=row.key,
            status=row.status,
            recipient_email=row.recipient_email,
            duplicate=duplicate,
        )
