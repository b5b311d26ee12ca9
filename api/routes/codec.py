"""The codec server (Temporal's codec-server protocol): `POST /codec/decode` and
`POST /codec/encode` take `{"payloads": [...]}` and answer the same with each payload run
through the payload codec that this API's Temporal client uses (`core.codec`).

The Temporal Web UI calls `decode` from the browser to show decrypted inputs, results and
failures, and the CLI can too (`temporal workflow show --codec-endpoint …/codec
--codec-auth "Bearer <key>"`). So the endpoint is guarded like the data it reveals: an ops
key, or the console session of someone with the ops role (the UI sends the session cookie
when its codec setting "Include cross-origin credentials" is on). Cross-origin requests are
answered only for the configured Temporal UI's origin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload, Payloads

from api.console.auth import LoginRequired, console_user
from api.deps import BearerCredentials, SessionDep, SettingsDep, TemporalDep, current_key
from api.errors import Problem, invalid
from core.codec import EncryptionCodec, PayloadDecryptionError
from core.settings import Settings
from schemas.enums import Role
from schemas.tables import ApiKey

router = APIRouter(prefix="/codec", tags=["codec server"])

MAX_BODY_BYTES = 16 * 1024 * 1024
_CODEC_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["payloads"],
                    "properties": {
                        "payloads": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "metadata": {
                                        "type": "object",
                                        "additionalProperties": {
                                            "type": "string",
                                            "format": "byte",
                                        },
                                    },
                                    "data": {"type": "string", "format": "byte"},
                                },
                            },
                        }
                    },
                },
                "example": {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}}]},
            }
        },
    }
}


async def codec_caller(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: BearerCredentials,
) -> ApiKey:
    """An ops key (Bearer) or an ops console session; 401/403 otherwise."""
    if credentials is not None:
        key = await current_key(request, session, credentials)
    else:
        try:
            key = (await console_user(request, session, settings)).key
        except LoginRequired:
            raise Problem(
                401,
                "decoding needs an ops key (Authorization: Bearer) or a console session",
                headers={"WWW-Authenticate": "Bearer"},
            ) from None
    if not key.role.allows(Role.OPS):
        raise Problem(403, f"decoding needs the ops role; the key '{key.name}' is {key.role.value}")
    return key


CodecCaller = Annotated[ApiKey, Depends(codec_caller)]


async def _codec(temporal: TemporalDep) -> EncryptionCodec:
    codec = temporal.data_converter.payload_codec
    if not isinstance(codec, EncryptionCodec):
        raise Problem(503, "this API's Temporal client has no payload codec")
    return codec


async def _payloads(request: Request) -> list[Payload]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Problem(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise Problem(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        parsed = json_format.Parse(bytes(body), Payloads())
    except (json_format.ParseError, DecodeError, UnicodeDecodeError, ValueError) as err:
        raise invalid("payloads", f"not a JSON list of Temporal payloads ({err})") from None
    return list(parsed.payloads)


def _answer(payloads: Sequence[Payload]) -> Response:
    body = json_format.MessageToJson(Payloads(payloads=payloads), indent=None)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


Transform = Callable[[EncryptionCodec, list[Payload]], list[Payload]]


async def _apply(request: Request, codec: EncryptionCodec, transform: Transform) -> Response:
    payloads = await _payloads(request)
    return _answer(transform(codec, payloads))


def _decode(codec: EncryptionCodec, payloads: list[Payload]) -> list[Payload]:
    decoded: list[Payload] = []
    for index, payload in enumerate(payloads):
        try:
            decoded.extend(codec.decode_sync([payload]))
        except PayloadDecryptionError as err:
            raise invalid(f"payloads[{index}]", str(err)) from None
        except DecodeError:
            raise invalid(f"payloads[{index}]", "decrypted, but not a payload") from None
    return decoded


@router.post(
    "/decode",
    summary="Decrypt payloads (the Temporal codec-server protocol)",
    description="Each encrypted payload comes back as it was before encryption; others come "
    "back unchanged. Needs an ops key or an ops console session. 422 names a payload that "
    "does not decrypt (unknown key, altered).",
    openapi_extra=_CODEC_BODY,
    response_class=Response,
)
async def decode(
    request: Request, _: CodecCaller, codec: Annotated[EncryptionCodec, Depends(_codec)]
) -> Response:
    return await _apply(request, codec, _decode)


@router.post(
    "/encode",
    summary="Encrypt payloads (the Temporal codec-server protocol)",
    description="Each payload comes back encrypted with the active key (for inputs typed into "
    "the Temporal UI or CLI). Needs an ops key or an ops console session.",
    openapi_extra=_CODEC_BODY,
    response_class=Response,
)
async def encode(
    request: Request, _: CodecCaller, codec: Annotated[EncryptionCodec, Depends(_codec)]
) -> Response:
    return await _apply(request, codec, lambda c, payloads: c.encode_sync(payloads))


# --- cross-origin: the Temporal UI's origin only ------------------------------------------


def allowed_origins(settings: Settings) -> frozenset[str]:
    """The Temporal UI's origin; on a loopback address both of its names (a browser treats
    http://localhost:8233 and http://127.0.0.1:8233 as different origins)."""
    parts = urlsplit(settings.resolved_temporal_ui_url)
    origins = {f"{parts.scheme}://{parts.netloc}".lower()}
    if parts.hostname in ("127.0.0.1", "localhost"):
        port = f":{parts.port}" if parts.port else ""
        origins |= {f"{parts.scheme}://127.0.0.1{port}", f"{parts.scheme}://localhost{port}"}
    return frozenset(origins)


def install_codec_cors(app: FastAPI, settings: Settings) -> None:
    """CORS for `/codec/*` alone: the preflight answered, every answer (errors too, so the
    UI can show them) marked readable by the UI's origin, credentials allowed."""
    origins = allowed_origins(settings)

    @app.middleware("http")
    async def codec_cors(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith("/codec/"):
            return await call_next(request)
        origin = (request.headers.get("origin") or "").lower()
        if request.method == "OPTIONS" and request.headers.get("access-control-request-method"):
            if origin not in origins:
                return Response(status_code=403)
            return Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Credentials": "true",
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": "authorization, content-type, x-namespace",
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                },
            )
        response = await call_next(request)
        if origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"
        return response
