"""The ops console: real browser-like requests (forms, cookies, redirects) through the app."""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from api.console.auth import COOKIE, sign_session
from api.main import create_app
from core.db import SessionFactory
from core.settings import Settings
from schemas.tables import ApiKey
from tests.api.conftest import CLIENT_ID, DRIVER_ID, Api, shipment_id

BASE = "http://testserver"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Browser:
    """One browser: its own cookie jar, logged in (or not) with one key."""

    http: httpx.AsyncClient

    async def page(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, **kw)

    async def csrf(self, path: str = "/console") -> str:
        response = await self.page(path)
        assert response.status_code == 200, response.text
        match = CSRF.search(response.text)
        assert match, response.text
        return match.group(1)

    async def submit(
        self,
        path: str,
        data: dict[str, str],
        *,
        token: str | None = None,
        from_page: str = "/console",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST a form as the console's own page would: with the CSRF token and Origin."""
        token = token if token is not None else await self.csrf(from_page)
        fields = {**data, "csrf_token": token} if token else data
        return await self.http.post(path, data=fields, headers={"Origin": BASE, **(headers or {})})


NewBrowser = Callable[..., Awaitable[Browser]]


@pytest.fixture
async def browser(app: FastAPI, keys: dict[str, str], api: Api) -> AsyncIterator[NewBrowser]:
    """`await browser("ops")`: a fresh browser logged in as that role (None: logged out)."""
    opened: list[httpx.AsyncClient] = []

    async def new(role: str | None = None, *, target: FastAPI = app) -> Browser:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=target), base_url=BASE)
        opened.append(http)
        if role is not None:
            response = await http.post("/console/login", data={"api_key": keys[role]})
            assert response.status_code == 303, response.text
        return Browser(http)

    yield new
    for http in opened:
        await http.aclose()


def case_path(case_id: str) -> str:
    return f"/console/cases/{case_id}"


async def waiting_case(api: Api) -> str:
    response = await api.open_case()
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")
    return case_id


def text(response: httpx.Response) -> str:
    return html.unescape(response.text)


# --- login and session ---------------------------------------------------------------------


async def test_login_sets_a_signed_session_cookie_without_the_key(
    browser: NewBrowser, keys: dict[str, str]
):
    me = await browser()

    response = await me.http.post("/console/login", data={"api_key": keys["ops"]})

    assert response.status_code == 303 and response.headers["location"] == "/console"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert keys["ops"] not in cookie and keys["ops"][3:20] not in cookie
    attributes = cookie.lower()
    assert "httponly" in attributes and "samesite=strict" in attributes
    assert "path=/console" in attributes and "secure" not in attributes
    assert "max-age=28800" in attributes
    page = await me.page("/console")
    assert page.status_code == 200 and "ops-key" in page.text and ">ops<" not in page.text
    assert "ops-key · ops" in page.text


async def test_the_cookie_is_secure_in_production(
    browser: NewBrowser, settings: Settings, app: FastAPI, keys: dict[str, str]
):
    production = create_app(
        settings.model_copy(update={"environment": "production"}),
        temporal=app.state.temporal,
        engine=app.state.engine,
    )
    me = await browser(target=production)

    response = await me.http.post("/console/login", data={"api_key": keys["viewer"]})

    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize("role", ["revoked", None])
async def test_a_bad_or_revoked_key_is_refused_with_401(
    browser: NewBrowser, keys: dict[str, str], role: str | None
):
    me = await browser()
    pasted = keys[role] if role else "cd_not-a-key"

    response = await me.http.post("/console/login", data={"api_key": pasted})

    assert response.status_code == 401
    assert "Unknown or revoked API key." in response.text
    assert "set-cookie" not in response.headers
    assert (await me.page("/console")).status_code == 303


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/console"),
        ("GET", "/console/cases/failed-delivery-S-1"),
        ("GET", "/console/cases/new/failed-delivery"),
        ("POST", "/console/cases/failed-delivery-S-1/notes"),
        ("POST", "/console/logout"),
    ],
)
async def test_console_pages_without_a_session_redirect_to_login(
    browser: NewBrowser, method: str, path: str
):
    me = await browser()

    response = await me.http.request(
        method, path, data={"text": "hi"} if method == "POST" else None
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"


async def _key_id(sessions: SessionFactory, name: str) -> uuid.UUID:
    async with sessions() as session:
        key = (await session.exec(select(ApiKey).where(ApiKey.name == name))).one()
        return key.id


@pytest.mark.parametrize("forgery", ["tampered", "expired", "revoked", "raw key", "other secret"])
async def test_a_forged_or_expired_session_redirects_to_login(
    browser: NewBrowser,
    settings: Settings,
    sessions: SessionFactory,
    keys: dict[str, str],
    forgery: str,
):
    me = await browser("viewer")
    genuine = me.http.cookies[COOKIE]
    secret = settings.resolved_link_secret
    later = int(time.time()) + 3600
    admin_id = await _key_id(sessions, "admin-key")
    value = {
        # the viewer's signature on the admin's key id
        "tampered": ".".join([admin_id.hex, *genuine.split(".")[1:]]),
        "expired": sign_session(
            secret, await _key_id(sessions, "viewer-key"), int(time.time()) - 1
        ),
        "revoked": sign_session(secret, await _key_id(sessions, "revoked-key"), later),
        "raw key": keys["admin"],
        "other secret": sign_session(b"x" * 48, admin_id, later),
    }[forgery]
    me.http.cookies.clear()

    response = await me.http.get("/console", headers={"Cookie": f"{COOKIE}={value}"})

    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"


async def test_logout_ends_the_session(browser: NewBrowser):
    me = await browser("ops")

    response = await me.submit("/console/logout", {})

    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    assert f'{COOKIE}=""' in response.headers["set-cookie"] or "max-age=0" in (
        response.headers["set-cookie"].lower()
    )
    assert (await me.page("/console")).status_code == 303


# --- the list and the case page ------------------------------------------------------------


async def test_the_list_shows_cases_with_the_filters_applied(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    await api.wait_for_list({"status": "waiting_on_customer"}, case_id)
    me = await browser("viewer")

    waiting = await me.page("/console", params={"status": "waiting_on_customer", "type": ""})
    closed = await me.page("/console", params={"status": "closed", "escalated": ""})
    searched = await me.page("/console", params={"q": case_id.removeprefix("failed-delivery-")})
    nothing = await me.page("/console", params={"q": "no-such-shipment"})

    assert waiting.status_code == 200
    assert f'href="/console/cases/{case_id}"' in waiting.text
    assert "waiting_on_customer" in waiting.text and "attempt 1 failed" in text(waiting)
    assert '<option value="waiting_on_customer" selected>' in waiting.text
    assert closed.status_code == 200 and case_id not in closed.text
    assert case_id in searched.text
    assert case_id not in nothing.text and "No cases match" in nothing.text


async def test_an_unknown_filter_value_is_named(browser: NewBrowser, api: Api):
    me = await browser("viewer")

    response = await me.page("/console", params={"status": "lost"})

    assert response.status_code == 422
    assert "status: &#39;lost&#39; is not one of" in response.text


async def test_the_case_page_shows_the_timeline_and_the_messages(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    await api.customer_link(case_id)  # the customer notice has been stored
    detail = await api.wait_for(case_id)
    me = await browser("viewer")

    response = await me.page(case_path(case_id))

    assert response.status_code == 200
    body = text(response)
    assert detail["subject"] in body and "waiting_on_customer" in body
    for event in detail["timeline"]:
        assert event["kind"] in body and event["summary"] in body
    notice = (await api.get("/messages", params={"case_id": case_id})).json()["items"]
    assert notice
    for message in notice:
        assert message["subject"] in body and message["recipient"]["email"] in body
    assert "<details><summary>" in response.text and "/r/…redacted…" in body  # the text body
    assert detail["trace_url"] in body
    assert "depot_id" in body and "ldn-1" in body


async def test_the_customer_link_is_redacted_for_a_viewer_and_shown_to_ops(
    browser: NewBrowser, api: Api
):
    case_id = await waiting_case(api)
    token = (await api.customer_link(case_id)).removeprefix("/r/")

    as_viewer = text(await (await browser("viewer")).page(case_path(case_id)))
    as_ops = text(await (await browser("ops")).page(case_path(case_id)))

    assert token not in as_viewer and "/r/…redacted…" in as_viewer
    assert token in as_ops


async def test_an_unknown_case_is_a_404_page(browser: NewBrowser):
    me = await browser("viewer")

    response = await me.page(case_path("failed-delivery-nope"))

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "unknown case" in response.text


# --- roles, CSRF and origin ----------------------------------------------------------------


async def test_a_viewer_sees_no_forms_and_cannot_act(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    me = await browser("viewer")

    page = await me.page(case_path(case_id))
    response = await me.submit(
        f"{case_path(case_id)}/notes", {"text": "viewer note"}, from_page=case_path(case_id)
    )

    assert page.status_code == 200 and "Actions" not in page.text
    assert f'action="/console/cases/{case_id}/' not in page.text
    assert "Open failed delivery" not in page.text
    assert response.status_code == 403 and "needs the ops role" in response.text
    detail = await api.wait_for(case_id)
    assert "viewer note" not in [e["summary"] for e in detail["timeline"]]
    opening = await me.page("/console/cases/new/failed-delivery")
    assert opening.status_code == 403


async def test_ops_adds_a_note_through_the_form(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    me = await browser("ops")
    page = await me.page(case_path(case_id))
    assert f'action="/console/cases/{case_id}/notes"' in page.text
    assert f'action="/console/cases/{case_id}/redelivery"' in page.text

    note = "Customer <b>called</b> back"
    response = await me.submit(f"{case_path(case_id)}/notes", {"text": note})

    assert response.status_code == 303
    assert response.headers["location"] == f"{case_path(case_id)}?done=notes"
    for _ in range(200):
        detail = await api.wait_for(case_id)
        notes = [e for e in detail["timeline"] if e["kind"] == "note"]
        if notes:
            break
        await asyncio.sleep(0.05)
    assert notes and note in notes[0]["summary"] and notes[0]["actor"] == "ops:ops-key"
    shown = await me.page(response.headers["location"])
    assert "Note added." in shown.text
    assert "Customer &lt;b&gt;called&lt;/b&gt; back" in shown.text and "<b>called" not in shown.text


async def test_a_post_without_the_csrf_token_is_refused(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    me = await browser("ops")

    missing = await me.submit(f"{case_path(case_id)}/notes", {"text": "x"}, token="")
    wrong = await me.submit(f"{case_path(case_id)}/notes", {"text": "x"}, token="A" * 43)

    assert missing.status_code == 403 and wrong.status_code == 403
    assert "did not come from the console" in missing.text
    detail = await api.wait_for(case_id)
    assert "note" not in [e["kind"] for e in detail["timeline"]]


async def test_a_csrf_token_belongs_to_its_session(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    mine, theirs = await browser("ops"), await browser("ops")

    response = await mine.submit(
        f"{case_path(case_id)}/notes", {"text": "x"}, token=await theirs.csrf()
    )

    assert response.status_code == 403


async def test_a_post_from_another_origin_is_refused(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    me = await browser("ops")
    path = f"{case_path(case_id)}/escalate"

    foreign = await me.submit(path, {"reason": "x"}, headers={"Origin": "http://evil.example"})
    login = await me.http.post(
        "/console/login", data={"api_key": "x"}, headers={"Origin": "https://evil.example"}
    )

    assert foreign.status_code == 403 and "another site" in foreign.text
    assert login.status_code == 403
    assert (await api.wait_for(case_id))["escalated"] is False


# --- actions -------------------------------------------------------------------------------


def _in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


async def test_a_second_redelivery_shows_the_409_reason(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    me = await browser("ops")
    neighbour = {"option": "neighbour", "neighbour_name": "Bob", "neighbour_address": "3 Main St"}

    first = await me.submit(f"{case_path(case_id)}/redelivery", neighbour)
    second = await me.submit(f"{case_path(case_id)}/redelivery", neighbour)

    assert first.status_code == 303
    assert second.status_code == 409
    assert "&#39;redelivery&#39; is not allowed" in second.text
    assert 'role="alert"' in second.text and "Timeline" in second.text
    detail = await api.wait_for(case_id, "redelivery_scheduled")
    assert detail["details"]["redelivery_option"] == "neighbour"


async def test_a_redelivery_window_without_a_window_names_the_field(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    me = await browser("ops")

    response = await me.submit(
        f"{case_path(case_id)}/redelivery", {"option": "redelivery_window", "date": _in_days(2)}
    )

    assert response.status_code == 422
    assert "window: window required when option is redelivery_window" in response.text
    assert 'value="' + _in_days(2) + '"' in response.text  # the form keeps what was typed
    assert (await api.wait_for(case_id))["status"] == "waiting_on_customer"


async def test_ops_book_a_pickup_point_then_report_the_delivery(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    me = await browser("ops")
    page = await me.page(case_path(case_id))
    assert "Corner Shop" in page.text and "Northern Kiosk" not in page.text  # its depot's only

    booked = await me.submit(
        f"{case_path(case_id)}/redelivery",
        {"option": "pickup_point", "pickup_point_id": "pp-corner"},
    )
    assert booked.status_code == 303
    await api.wait_for(case_id, "redelivery_scheduled")
    scheduled = await me.page(case_path(case_id))
    assert f'action="/console/cases/{case_id}/delivery-outcome"' in scheduled.text
    no_reason = await me.submit(f"{case_path(case_id)}/delivery-outcome", {"outcome": "failed"})
    delivered = await me.submit(f"{case_path(case_id)}/delivery-outcome", {"outcome": "delivered"})

    assert no_reason.status_code == 422 and "reason" in no_reason.text
    assert delivered.status_code == 303
    closed = await api.wait_for(case_id, "closed")
    assert closed["resolution"] == "delivered"


async def test_a_pickup_point_of_another_depot_is_refused_with_the_field(
    browser: NewBrowser, api: Api
):
    case_id = await waiting_case(api)
    me = await browser("ops")

    response = await me.submit(
        f"{case_path(case_id)}/redelivery", {"option": "pickup_point", "pickup_point_id": "pp-nyc"}
    )

    assert response.status_code == 422 and "pickup_point_id" in response.text


async def test_ops_escalate_assign_and_cancel_through_the_forms(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    me = await browser("ops")
    path = case_path(case_id)

    assigned = await me.submit(f"{path}/assign", {"assignee": "sam@ops"})
    escalated = await me.submit(f"{path}/escalate", {"reason": "VIP customer"})
    empty = await me.submit(f"{path}/cancel", {"reason": ""})
    cancelled = await me.submit(f"{path}/cancel", {"reason": "Client withdrew the order"})

    assert [assigned.status_code, escalated.status_code, cancelled.status_code] == [303] * 3
    assert empty.status_code == 422 and "reason" in empty.text
    detail = await api.wait_for(case_id, "cancelled")
    assert detail["assignee"] == "sam@ops" and detail["escalated"] is True
    page = await me.page(path)
    assert "VIP customer" in page.text and "Actions" not in page.text  # a closed case
    unknown = await me.submit(f"{path}/reopen", {})
    assert unknown.status_code == 404


# --- opening a case ------------------------------------------------------------------------


def _open_form(**changes: str) -> dict[str, str]:
    form = {
        "shipment_id": shipment_id(),
        "client_id": CLIENT_ID,
        "driver_id": DRIVER_ID,
        "customer.name": "Ada Customer",
        "customer.email": "ada@example.com",
        "customer.phone": "",
        "address.line1": "1 Main St",
        "address.line2": "",
        "address.city": "London",
        "address.postal_code": "E1 6AN",
        "address.country": "gb",
        "attempt_number": "1",
        "reason": "not_home",
        "attempted_at": "",
        "note": "Left a card",
    }
    form.update(changes)
    return form


async def test_opening_a_case_through_the_form_redirects_to_its_page(browser: NewBrowser, api: Api):
    me = await browser("ops")
    page = await me.page("/console/cases/new/failed-delivery")
    assert page.status_code == 200 and "Dee Driver" in page.text and "Acme Retail" in page.text
    form = _open_form()
    case_id = f"failed-delivery-{form['shipment_id']}"

    response = await me.submit(
        "/console/cases/new/failed-delivery", form, from_page="/console/cases/new/failed-delivery"
    )

    assert response.status_code == 303
    assert response.headers["location"] == case_path(case_id)
    detail = await api.wait_for(case_id, "waiting_on_customer")
    assert detail["client_id"] == CLIENT_ID and detail["details"]["depot_id"] == "ldn-1"
    opened = [e for e in detail["timeline"] if e["actor"] == "ops:ops-key"]
    assert opened
    shown = await me.page(response.headers["location"])
    assert shown.status_code == 200 and form["shipment_id"] in shown.text


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"customer.email": "not-an-email"}, "customer.email"),
        ({"client_id": "nobody"}, "client_id"),
        ({"shipment_id": "bad id!"}, "shipment_id"),
        ({"attempted_at": "yesterday"}, "attempted_at"),
    ],
)
async def test_an_invalid_open_form_names_the_field(
    browser: NewBrowser, api: Api, changes: dict[str, str], field: str
):
    me = await browser("ops")
    form = _open_form(**changes)

    response = await me.submit(
        "/console/cases/new/failed-delivery", form, from_page="/console/cases/new/failed-delivery"
    )

    assert response.status_code == 422
    assert f"<strong>{field}</strong>" in response.text
    assert f'<span class="field-error">{field}:' in response.text
    assert 'value="Ada Customer"' in response.text  # what was typed is kept
    listed = (await api.get("/cases", params={"q": form["shipment_id"]})).json()
    assert listed["total"] == 0
