"""`Idempotency-Key` on every POST that opens a case or acts on one (`/cases/…`,
`/drivers/{id}/offboard`): the same key with the same request replays the first answer, the
same key with another request is a 422, for 24 hours.

A pure ASGI middleware: it buffers the request body (up to the upload limit), fingerprints
the method, path, query, content type and body, and keys the record by the caller's
credentials (their SHA-256) and the key, so two callers never share a key. The first request
holds the key while it runs (a second one meanwhile is a 409 to retry); its answer is kept
unless it is a 5xx or an auth refusal (401, 403, 429), which the caller may retry with the
same key and the request then runs again. Retrying is safe: each update the request sends
carries an update id derived from the key (`update_id`), so Temporal applies the action once
however often it is sent, and a case is opened once per business key anyway.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.uploads import FORM_OVERHEAD
from core.db import SessionFactory
from schemas.tables import IdempotencyKey

HEADER = "Idempotency-Key"
KEPT_FOR = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=2)
"""A claim older than this is a request whose process died (every call is bounded at 30 s)."""
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_PATHS = (re.compile(r"^/cases(/.*)?$"), re.compile(r"^/drivers/[^/]+/offboard$"))
_NOT_KEPT = frozenset({401, 403, 429})
PROBLEM_JSON = "application/problem+json"

_request_key: ContextVar[str | None] = ContextVar("idempotency_request_key", default=None)


def applies_to(method: str, path: str) -> bool:
    """The POSTs that take an `Idempotency-Key`: opening a case and every action."""
    return method == "POST" and any(pattern.match(path) for pattern in _PATHS)


def update_id(workflow_id: str, update_name: str) -> str | None:
    """The id of `update_name` on `workflow_id` for the request being served, when it came
    with an `Idempotency-Key`: the same key sends the same update id, which Temporal applies
    once. None without a key (Temporal then picks a fresh id)."""
    claim = _request_key.get()
    if claim is None:
        return None
    digest = hashlib.sha256(f"{claim}\n{workflow_id}\n{update_name}".encode()).hexdigest()
    return f"idempotency-{digest}"


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes + FORM_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not applies_to(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        raw_key = headers.get(HEADER.lower())
        credentials = headers.get("authorization")
        if raw_key is None or credentials is None:  # no key, or the route answers 401
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not _KEY.match(key):
            message = "must be 1 to 255 visible ASCII characters"
            await _problem(send, scope, 422, f"{HEADER}: {message}", field=HEADER)
            return
        declared = headers.get("content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self.app(scope, receive, send)  # the route refuses it (413) unread
            return
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            await _problem(send, scope, 413, "the request body is larger than the upload limit")
            return
        sessions: SessionFactory = scope["app"].state.sessions
        caller = hashlib.sha256(credentials).hexdigest()
        fingerprint = _fingerprint(scope, headers, body)
        claim = await _claim(sessions, caller, key, fingerprint)
        if isinstance(claim, IdempotencyKey):
            await _replay(send, claim)
            return
        if claim == "mismatch":
            message = "this key was used with another request; send a new key for a new request"
            await _problem(send, scope, 422, f"{HEADER}: {message}", field=HEADER)
            return
        if claim == "running":
            await _problem(
                send,
                scope,
                409,
                "a request with this Idempotency-Key is still being handled; retry shortly",
                headers={"Retry-After": "1"},
            )
            return
        await self._first(scope, body, send, sessions, caller, key, claim)

    async def _first(
        self,
        scope: Scope,
        body: bytes,
        send: Send,
        sessions: SessionFactory,
        caller: str,
        key: str,
        claim_id: str,
    ) -> None:
        """Run the request (the key claimed) and keep its answer."""
        sent: dict[str, Any] = {"status": None, "headers": [], "body": b""}

        async def replay_body() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                sent["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                sent["body"] += message.get("body", b"")
            await send(message)

        token = _request_key.set(claim_id)
        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await _release(sessions, caller, key)
            raise
        finally:
            _request_key.reset(token)
        status = sent["status"]
        if status is None or status >= 500 or status in _NOT_KEPT:
            await _release(sessions, caller, key)
            return
        response_headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in sent["headers"]
        }
        await _keep(
            sessions,
            caller,
            key,
            status=status,
            content_type=response_headers.get("content-type"),
            location=response_headers.get("location"),
            body=sent["body"],
        )


def _fingerprint(scope: Scope, headers: dict[str, bytes], body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (
        scope["method"].encode(),
        scope["path"].encode(),
        scope.get("query_string", b""),
        headers.get("content-type", b"").split(b";")[0].strip().lower(),
    ):
        digest.update(part + b"\n")
    if headers.get("content-type", b"").startswith(b"multipart/"):
        body = _without_boundaries(body, headers["content-type"])
    digest.update(body)
    return digest.hexdigest()


def _without_boundaries(body: bytes, content_type: bytes) -> bytes:
    """A multipart body with its boundary string removed: a client picks a new boundary for
    each send of the same form."""
    match = re.search(rb"boundary=\"?([^\";]+)\"?", content_type)
    return body.replace(match.group(1), b"") if match else body


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _claim(
    sessions: SessionFactory, caller: str, key: str, fingerprint: str
) -> IdempotencyKey | str:
    """The kept answer to replay, "mismatch", "running", or the claim's id (this request
    runs): a new key, a released one (its last answer was not kept) or an abandoned claim."""
    now = datetime.now(UTC)
    async with sessions() as session:
        for _ in range(2):
            found = (
                await session.exec(
                    select(IdempotencyKey).where(
                        IdempotencyKey.scope == caller, IdempotencyKey.key == key
                    )
                )
            ).first()
            if found is not None and found.expires_at <= now:
                await session.delete(found)
                await session.commit()
                found = None
            if found is not None:
                if found.fingerprint != fingerprint:
                    return "mismatch"
                if found.status_code is not None:
                    return found
                if found.claimed_at is not None and found.claimed_at > now - ABANDONED_AFTER:
                    return "running"
                found.claimed_at = now  # released, or its process died: run it again
                session.add(found)
                await session.commit()
                return str(found.id)
            await session.exec(delete(IdempotencyKey).where(col(IdempotencyKey.expires_at) <= now))
            claim = IdempotencyKey(
                scope=caller,
                key=key,
                fingerprint=fingerprint,
                claimed_at=now,
                created_at=now,
                expires_at=now + KEPT_FOR,
            )
            session.add(claim)
            try:
                await session.commit()
            except IntegrityError:  # the same key claimed a moment ago: judge that one
                await session.rollback()
                continue
            return str(claim.id)
    return "running"


async def _find(session: Any, caller: str, key: str) -> IdempotencyKey | None:
    found: IdempotencyKey | None = (
        await session.exec(
            select(IdempotencyKey).where(IdempotencyKey.scope == caller, IdempotencyKey.key == key)
        )
    ).first()
    return found


async def _keep(
    sessions: SessionFactory,
    caller: str,
    key: str,
    *,
    status: int,
    content_type: str | None,
    location: str | None,
    body: bytes,
) -> None:
    async with sessions() as session:
        found = await _find(session, caller, key)
        if found is None:
            return
        found.status_code, found.content_type, found.location = status, content_type, location
        found.body, found.claimed_at = body, None
        session.add(found)
        await session.commit()


async def _release(sessions: SessionFactory, caller: str, key: str) -> None:
    """The request's answer is not kept: the same key may run it again, with the same
    update ids (the row, and so its id, stays until the key expires)."""
    async with sessions() as session:
        found = await _find(session, caller, key)
        if found is not None:
            found.claimed_at = None
            session.add(found)
            await session.commit()


async def _replay(send: Send, kept: IdempotencyKey) -> None:
    headers = [(b"idempotent-replayed", b"true")]
    if kept.content_type:
        headers.append((b"content-type", kept.content_type.encode("latin-1")))
    if kept.location:
        headers.append((b"location", kept.location.encode("latin-1")))
    body = kept.body or b""
    headers.append((b"content-length", str(len(body)).encode()))
    assert kept.status_code is not None
    await send({"type": "http.response.start", "status": kept.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _problem(
    send: Send,
    scope: Scope,
    status: int,
    detail: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """A problem+json answer in the shape of `api.errors.problem_response`."""
    slugs = {409: "idempotency-key-in-use", 413: "content-too-large", 422: "invalid-request"}
    document: dict[str, Any] = {
        "type": f"urn:casedesk:problem:{slugs.get(status, 'error')}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": scope["path"],
    }
    if field is not None:
        document["errors"] = [{"field": field, "message": detail.removeprefix(f"{field}: ")}]
    body = json.dumps(document).encode()
    raw_headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
