"""`GET /messages`: what was sent (or stored by the outbox sink), newest first."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import PageDep, SessionDep, ViewerKey
from api.listing import paginate
from api.models import MessageOut, MessageRecipient, Page
from schemas.enums import MessageStatus
from schemas.tables import Message

router = APIRouter(tags=["messages"])


def message_out(row: Message) -> MessageOut:
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
        text_body=row.text_body,
        html_body=row.html_body,
        status=row.status.value,
        error=row.error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


@router.get("/messages", summary="Messages sent for cases")
async def list_messages(
    session: SessionDep,
    _: ViewerKey,
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
        items=[message_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )
