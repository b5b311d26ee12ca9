"""API keys and the customers' signed links.

API keys: `cd_<random>`; only the SHA-256 is stored. Links: `<payload>.<signature>`, both
base64url, HMAC-SHA256 over the payload with the link secret; the payload names the case,
the purpose and the expiry, so a token is single-purpose and cannot be stretched or moved to
another case.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

API_KEY_PREFIX = "cd_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class InvalidToken(Exception):
    """The link is malformed, tampered with or expired; `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    purpose: str
    case_id: str
    expires_at: datetime
    data: dict[str, Any]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_link(
    secret: bytes, *, purpose: str, case_id: str, expires_at: datetime, **data: Any
) -> str:
    payload = {"p": purpose, "c": case_id, "e": int(expires_at.timestamp()), "d": data}
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def verify_link(
    secret: bytes, token: str, *, purpose: str, now: datetime | None = None
) -> LinkClaims:
    return verify_link_for(secret, token, purposes=(purpose,), now=now)


def verify_link_for(
    secret: bytes, token: str, *, purposes: Collection[str], now: datetime | None = None
) -> LinkClaims:
    """`verify_link` for a page that serves several purposes: the token must be signed, name
    one of `purposes` and not be expired; `claims.purpose` says which one it is."""
    # A token is base64url and one dot: anything else (a non-ASCII character pasted after it,
    # which `hmac.compare_digest` refuses on `str`) is not a link we signed.
    if not token.isascii():
        raise InvalidToken("This link is not valid.")
    try:
        body, signature = token.split(".")
        expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    except ValueError:
        raise InvalidToken("This link is not valid.") from None
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise InvalidToken("This link is not valid.")
    try:
        payload = json.loads(_unb64(body))
        claims = LinkClaims(
            purpose=payload["p"],
            case_id=payload["c"],
            expires_at=datetime.fromtimestamp(payload["e"], UTC),
            data=payload.get("d", {}),
        )
    except (ValueError, KeyError, TypeError):
        raise InvalidToken("This link is not valid.") from None
    if not isinstance(claims.purpose, str) or claims.purpose not in purposes:
        raise InvalidToken("This link is not valid for this page.")
    if claims.expires_at <= (now or datetime.now(UTC)):
        raise InvalidToken("This link has expired.")
    return claims
