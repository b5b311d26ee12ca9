"""Console sessions, CSRF and the console's own error pages.

The session cookie holds `<key id>.<expiry>.<nonce>.<signature>`: never the API key itself. The
signature is an HMAC-SHA256 with a key derived from the link secret (so a customer link can
never pass for a session, nor the reverse). The key is looked up again on every request, so
revoking it ends its console sessions too.

Every console POST carries a CSRF token derived from the session value by another HMAC, and a
POST whose `Origin` names another site is refused; SameSite=Strict is the third line.

`ConsoleRoute` renders the console's failures as pages: no session → 303 to the login page,
a refused POST → 403 page, a `Problem` from the shared route code → a page with its status.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from api.deps import SessionDep, SettingsDep
from api.errors import Problem, field_errors
from core.settings import Settings
from schemas.enums import Role
from schemas.tables import ApiKey

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


# --- signing -----------------------------------------------------------------------------


def _derived(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"casedesk/console/{purpose}".encode(), hashlib.sha256).digest()


def _mac(secret: bytes, purpose: str, message: str) -> str:
    digest = hmac.new(_derived(secret, purpose), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_session(secret: bytes, key_id: uuid.UUID, expires_at: int) -> str:
    """The cookie value for `key_id` until `expires_at` (Unix seconds). A random nonce makes
    each login its own session, with its own CSRF token."""
    body = f"{key_id.hex}.{expires_at}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(secret, 'session', body)}"


def read_session(secret: bytes, value: str, now: float) -> uuid.UUID | None:
    """The key id of a well-signed, unexpired session value; None otherwise."""
    body, _, signature = value.rpartition(".")
    expected = _mac(secret, "session", body)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    try:
        key_hex, expires, _nonce = body.split(".")
        key_id, expires_at = uuid.UUID(hex=key_hex), int(expires)
    except ValueError:
        return None
    return key_id if expires_at > now else None


def csrf_token(secret: bytes, session_value: str) -> str:
    return _mac(secret, "csrf", session_value)


def set_session_cookie(response: Response, settings: Settings, key: ApiKey) -> None:
    expires_at = int(time.time() + SESSION_TTL.total_seconds())
    response.set_cookie(
        COOKIE,
        sign_session(settings.resolved_link_secret, key.id, expires_at),
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


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, f"console/{name}", context, status_code=status, headers=_PAGE_HEADERS
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
    value = request.cookies.get(COOKIE)
    secret = settings.resolved_link_secret
    key_id = read_session(secret, value, time.time()) if value else None
    key = await session.get(ApiKey, key_id) if key_id else None
    if value is None or key is None or key.revoked_at is not None:
        raise LoginRequired()
    return ConsoleUser(key=key, csrf_token=csrf_token(secret, value))


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
