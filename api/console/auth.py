"""Console sessions, CSRF and the console's own error pages.

Sessions live on the server (`console_sessions`): the cookie holds a random token, never the
API key, and only the token's SHA-256 is stored. A session ends at once when its browser logs
out, when its key is revoked (the key is looked up on every request), after
`console_idle_timeout_minutes` without a request and 8 hours after login: a copied cookie
stops working with it.

Every console POST carries a CSRF token derived from the session token by an HMAC (with a key
derived from the link secret), and a POST whose `Origin` names another site is refused;
SameSite=Strict is the third line.

`ConsoleRoute` renders the console's failures as pages: no session → 303 to the login page,
a refused POST → 403 page, a `Problem` from the shared route code → a page with its status.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import SessionDep, SettingsDep
from api.errors import Problem, field_errors
from core.settings import Settings
from schemas.enums import Role
from schemas.tables import ApiKey, ConsoleSession

COOKIE = "casedesk_console"
# The whole site: the codec server (`/codec`) takes an ops console session too.
COOKIE_PATH = "/"
SESSION_TTL = timedelta(hours=8)
CSRF_FIELD = "csrf_token"
LOGIN_PATH = "/console/login"

# Pages that hold forms are not cached, framed or allowed to post anywhere else.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
}


# --- sessions ----------------------------------------------------------------------------

SEEN_EVERY = timedelta(minutes=1)
"""A session's `last_seen_at` is written at most this often (not on every page)."""


def _derived(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"casedesk/console/{purpose}".encode(), hashlib.sha256).digest()


def _mac(secret: bytes, purpose: str, message: str) -> str:
    digest = hmac.new(_derived(secret, purpose), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret: bytes, session_token: str) -> str:
    return _mac(secret, "csrf", session_token)


async def start_session(db: AsyncSession, key: ApiKey, now: datetime) -> str:
    """A new session for `key`: its token (the cookie value), stored as its hash."""
    token = secrets.token_urlsafe(32)
    db.add(
        ConsoleSession(
            token_hash=_token_hash(token),
            key_id=key.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_TTL,
        )
    )
    await db.commit()
    return token


async def end_session(db: AsyncSession, token: str | None, now: datetime) -> None:
    """Logout: the session ends on the server, whoever else holds its cookie."""
    if not token or not token.isascii():
        return
    await db.exec(
        update(ConsoleSession)
        .where(
            col(ConsoleSession.token_hash) == _token_hash(token),
            col(ConsoleSession.ended_at).is_(None),
        )
        .values(ended_at=now)
    )
    await db.commit()


async def session_key(
    db: AsyncSession, token: str, now: datetime, idle: timedelta
) -> ApiKey | None:
    """The key of a live session: not ended, not expired, not idle too long, its key not
    revoked. Marks the session seen."""
    if not token.isascii():
        return None
    found = (
        await db.exec(select(ConsoleSession).where(ConsoleSession.token_hash == _token_hash(token)))
    ).first()
    if found is None or found.ended_at is not None or found.expires_at <= now:
        return None
    if found.last_seen_at + idle <= now:
        return None
    key = await db.get(ApiKey, found.key_id)
    if key is None or key.revoked_at is not None:
        return None
    if now - found.last_seen_at >= SEEN_EVERY:
        found.last_seen_at = now
        db.add(found)
        await db.commit()
    return key


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        path=COOKIE_PATH,
        secure=settings.environment == "production",
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        secure=settings.environment == "production",
        httponly=True,
        samesite="strict",
    )


# --- failures as pages -------------------------------------------------------------------


class LoginRequired(Exception):
    """No valid session: the console sends the browser to the login page."""


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        f"console/{name}",
        context,
        status_code=status,
        headers={**_PAGE_HEADERS, **(headers or {})},
    )
    return response


def error_page(
    request: Request, status: int, message: str, user: ConsoleUser | None = None
) -> HTMLResponse:
    context = {"status": status, "message": message, "user": user}
    return render(request, "error.html", context, status)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class ConsoleRoute(APIRoute):
    """Console routes answer with pages, whatever the shared route code raises."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                return see_other(LOGIN_PATH)
            except Forbidden as err:
                return error_page(request, 403, err.message)
            except Problem as problem:
                return error_page(request, problem.status, problem.detail)
            except RequestValidationError as err:
                fields = field_errors(err.errors())
                message = "; ".join(f"{e['field']}: {e['message']}" for e in fields)
                return error_page(request, 422, message)

        return console_handler


# --- who is looking ----------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleUser:
    key: ApiKey
    csrf_token: str

    @property
    def can_act(self) -> bool:
        return self.key.role.allows(Role.OPS)


async def console_user(request: Request, session: SessionDep, settings: SettingsDep) -> ConsoleUser:
    token = request.cookies.get(COOKIE)
    idle = timedelta(minutes=settings.console_idle_timeout_minutes)
    key = await session_key(session, token, datetime.now(UTC), idle) if token else None
    if token is None or key is None:
        raise LoginRequired()
    return ConsoleUser(key=key, csrf_token=csrf_token(settings.resolved_link_secret, token))


User = Annotated[ConsoleUser, Depends(console_user)]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(request: Request, settings: Settings) -> None:
    """A browser names the page's origin on a POST; it must be this app's."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    own = {_origin(str(request.base_url))}
    if settings.public_base_url:
        own.add(_origin(settings.public_base_url))
    if origin.lower() not in own:
        raise Forbidden("This form was sent from another site and has been refused.")


def check_csrf(fields: Mapping[str, str], user: ConsoleUser) -> None:
    """The form carries this session's CSRF token."""
    sent = fields.get(CSRF_FIELD, "").encode()
    if not hmac.compare_digest(sent, user.csrf_token.encode()):
        raise Forbidden("The form has expired or did not come from the console; please retry.")


async def posted_form(request: Request, user: User, settings: SettingsDep) -> dict[str, str]:
    """The posted fields of a console form, once its origin and CSRF token check out.

    Not for uploads: their multipart body is read by the upload code alone, capped, which
    hands the console the fields to `check_csrf` before anything is stored."""
    check_origin(request, settings)
    raw = await request.form()
    form = {k: v.strip() for k, v in raw.items() if isinstance(v, str)}
    check_csrf(form, user)
    form.pop(CSRF_FIELD)
    return form


PostedForm = Annotated[dict[str, str], Depends(posted_form)]


def require_ops(user: ConsoleUser) -> None:
    if not user.can_act:
        raise Forbidden(
            f"This needs the ops role; the key '{user.key.name}' is {user.key.role.value}."
        )
