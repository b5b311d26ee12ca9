"""`GET /messages`: what was sent (or stored by the outbox sink), newest first.

A customer email holds the signed `/r/{token}` link that lets its bearer act as the customer,
so below the ops role every body is returned with the token redacted (`redact_links`): the one
place that decides, used by everything that returns a message body (this route and the
console's case page, which calls it)."""

from __future__ import annotations

import re

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import PageDep, SessionDep, ViewerKey
from api.listing import paginate
from api.models import MessageAttachment, MessageOut, MessageRecipient, Page
from schemas.enums import MessageStatus, Role
from schemas.tables import ApiKey, Message

router = APIRouter(tags=["messages"])

REDACTED = "…redacted…"
# A customer link's token: `<base64url payload>.<base64url signature>` after `/r/`
# (see `core.security.sign_link`). The rest of the URL and the body are kept.
_LINK_TOKEN = re.compile(r"(/r/)[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


def redact_links(body: str) -> str:
    """`body` with every customer link's token replaced by `…redacted…`."""
    return _LINK_TOKEN.sub(rf"\g<1>{REDACTED}", body)


def may_see_links(key: ApiKey) -> bool:
    """Only ops (and admins) may see live customer links; they can act on the case anyway."""
    return key.role.allows(Role.OPS)


def message_out(row: Message, key: ApiKey) -> MessageOut:
    """The message as `key` may see it (customer links redacted below the ops role)."""
    reveal = may_see_links(key)
    return MessageOut(
        id=row.id,
        case_id=row.case_id,
        key=row.key,
        template=row.template,
        backend=row.backend,
        recipient=MessageRecipient(
            role=row.recipient_role, name=row.recipient_name, email=row.recipient_email
        ),
        subject=row.subject,
        text_body=row.text_body if reveal else redact_links(row.text_body),
        html_body=row.html_body if reveal else redact_links(row.html_body),
        attachments=[MessageAttachment.model_validate(a) for a in row.attachments or []],
        status=row.status.value,
        error=row.error,
        created_at=row.created_at,
        sent_at=row.sent_at,
        delivery_problem=row.delivery_problem,
    )


@router.get(
    "/messages",
    summary="Messages sent for cases",
    description="Newest first. Below the ops role, the token of every customer link "
    "(`/r/{token}`) in `text_body` and `html_body` is replaced by `…redacted…`.",
)
async def list_messages(
    session: SessionDep,
    key: ViewerKey,
    page: PageDep,
    case_id: str | None = None,
    status: MessageStatus | None = None,
) -> Page[MessageOut]:
    statement = select(Message).order_by(col(Message.created_at).desc(), col(Message.key))
    if case_id:
        statement = statement.where(Message.case_id == case_id)
    if status:
        statement = statement.where(Message.status == status)
    rows, total = await paginate(session, statement, page)
    return Page(
        items=[message_out(r, key) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
