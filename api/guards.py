"""Requests whose URL carries control characters are refused before any route sees them.

No id, filter or token of ours holds one, and a NUL reaches PostgreSQL as an error (its text
cannot hold NUL), so `/cases/x%00`, `/cases?q=%00` and the like are a 400 problem naming the
part of the URL, never a 500 or a query for nothing."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def url_problem(scope: Scope) -> str | None:
    """What part of the URL holds a control character, or None."""
    if _CONTROL.search(scope.get("path", "")):
        return "the path contains control characters"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if _CONTROL.search(name) or _CONTROL.search(value):
            shown = name if not _CONTROL.search(name) else "a parameter"
            return f"the query parameter '{shown}' contains control characters"
    return None


class RefuseControlCharacters:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = url_problem(scope) if scope["type"] == "http" else None
        if problem is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "type": "urn:casedesk:problem:bad-request",
                "title": "Bad Request",
                "status": 400,
                "detail": problem,
                "instance": _CONTROL.sub("", scope.get("path", "")),
            }
        ).encode()
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})
