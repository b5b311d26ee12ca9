"""The codec server (`/codec/encode`, `/codec/decode`, Temporal's codec-server protocol): what
it decrypts, for whom (an ops key or an ops console session), and for which origin (the
Temporal UI's, with credentials); bad bodies and altered payloads are 422 naming the payload."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.api import test_console
from tests.api.conftest import Api, assert_problem
from tests.api.test_console import NewBrowser

browser = test_console.browser  # a logged-in browser per role

UI = "http://127.0.0.1:8233"  # the test settings' Temporal UI (the default)
SECRET = '{"name": "Zebedee Canarywing"}'


def plain(text: str) -> dict[str, Any]:
    return {
        "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
        "data": base64.b64encode(text.encode()).decode(),
    }


async def encoded(api: Api, text: str = SECRET) -> dict[str, Any]:
    response = await api.post("/codec/encode", json={"payloads": [plain(text)]}, role="ops")
    assert response.status_code == 200, response.text
    (payload,) = response.json()["payloads"]
    return payload


async def test_encode_seals_a_payload_and_decode_opens_it(api: Api):
    sealed = await encoded(api)

    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert base64.b64decode(sealed["metadata"]["encryption-key-id"]) == b"test-key-1"
    assert b"Canarywing" not in base64.b64decode(sealed["data"])

    opened = await api.post("/codec/decode", json={"payloads": [sealed]}, role="ops")

    assert opened.status_code == 200, opened.text
    assert opened.headers["cache-control"] == "no-store"
    assert opened.json() == {"payloads": [plain(SECRET)]}


async def test_a_plain_payload_decodes_to_itself(api: Api):
    response = await api.post("/codec/decode", json={"payloads": [plain("42")]}, role="ops")

    assert response.json() == {"payloads": [plain("42")]}


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("viewer", 403), ("revoked", 401)])
async def test_decoding_needs_an_ops_key(api: Api, role: str | None, status: int):
    sealed = await encoded(api)

    response = await api.post("/codec/decode", json={"payloads": [sealed]}, role=role)

    assert_problem(response, status)
    assert "Canarywing" not in response.text


async def test_an_ops_console_session_may_decode_and_a_viewers_may_not(
    api: Api, browser: NewBrowser
):
    sealed = await encoded(api)

    ops = await (await browser("ops")).http.post("/codec/decode", json={"payloads": [sealed]})
    viewer = await (await browser("viewer")).http.post("/codec/decode", json={"payloads": [sealed]})
    nobody = await (await browser(None)).http.post("/codec/decode", json={"payloads": [sealed]})

    assert ops.status_code == 200, ops.text
    assert ops.json() == {"payloads": [plain(SECRET)]}
    assert viewer.status_code == 403 and nobody.status_code == 401


async def test_an_altered_payload_is_422_naming_it(api: Api):
    sealed = await encoded(api)
    data = bytearray(base64.b64decode(sealed["data"]))
    data[-1] ^= 1
    altered = {**sealed, "data": base64.b64encode(bytes(data)).decode()}

    response = await api.post("/codec/decode", json={"payloads": [plain("1"), altered]}, role="ops")

    assert_problem(response, 422, "payloads[1]")


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"payloads": "nope"}', b'{"payloads": [{"data": 5}]}', b"\xff\xfe"],
    ids=["not-json", "not-a-list", "data-not-bytes", "not-utf8"],
)
async def test_a_body_that_is_not_payloads_is_422(api: Api, body: bytes):
    response = await api.post(
        "/codec/decode", content=body, headers={"content-type": "application/json"}, role="ops"
    )

    assert_problem(response, 422, "payloads")


async def test_the_ui_origin_gets_a_preflight_with_credentials_and_others_none(api: Api):
    asked = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "x-namespace",
    }

    allowed = await api.raw.options("/codec/decode", headers={"origin": UI, **asked})
    twin = await api.raw.options(
        "/codec/decode", headers={"origin": "http://localhost:8233", **asked}
    )
    other = await api.raw.options(
        "/codec/decode", headers={"origin": "https://evil.example", **asked}
    )

    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == UI
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "x-namespace" in allowed.headers["access-control-allow-headers"]
    assert twin.headers["access-control-allow-origin"] == "http://localhost:8233"
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers


async def test_answers_and_their_errors_are_readable_by_the_ui_origin_only(api: Api):
    sealed = await encoded(api)

    ok = await api.post(
        "/codec/decode", json={"payloads": [sealed]}, headers={"origin": UI}, role="ops"
    )
    refused = await api.raw.post(
        "/codec/decode", json={"payloads": [sealed]}, headers={"origin": UI}
    )
    elsewhere = await api.post(
        "/codec/decode",
        json={"payloads": [sealed]},
        headers={"origin": "https://evil.example"},
        role="ops",
    )

    assert ok.headers["access-control-allow-origin"] == UI
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == UI
    assert "access-control-allow-origin" not in elsewhere.headers
    cases = await api.get("/cases", headers={"origin": UI})  # no CORS beyond the codec
    assert "access-control-allow-origin" not in cases.headers
