"""Messaging: render a Jinja2 email (HTML + text), write the outbox row, send, mark sent."""

from __future__ import annotations

from temporalio import activity

from schemas.activities import MessageRequest, MessageResult


class MessagingActivities:
    @activity.defn
    async def send_message(self, request: MessageRequest) -> MessageResult:
        raise NotImplementedError
