"""The ops console: real browser-like requests (forms, cookies, redirects) through the app."""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from api.console.auth import COOKIE
from api.console.forms import actions_for
from api.main import create_app
from core.db import SessionFactory
from core.settings import Settings
from schemas.case_types import CASE_TYPES, MULTIPART
from schemas.tables import ApiKey, ConsoleSession
from tests.api.claims import EXE, MAX_UPLOAD, open_gathering_claim, png, wait_until
from tests.api.conftest import (
    CLIENT_ID,
    DRIVER_ID,
    NO_CHANGES,
    Api,
    client_policy,
    shipment_id,
)
from tests.api.drivers import onboarding

BASE = "http://testserver"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM = re.compile(r'<form method="post" action="/console/cases/[^"/]+/([a-z-]+)"')
CONSOLE_DOCUMENT = re.compile(r'href="(/console/cases/[^"/]+/documents/[^"/]+)"')


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A small upload limit, for the console's claim uploads."""
    return settings.model_copy(update={"max_upload_bytes": MAX_UPLOAD})


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

    async def upload(
        self,
        path: str,
        kind: str,
        data: bytes,
        *,
        name: str = "photo.png",
        token: str | None = None,
        from_page: str = "/console",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST the upload form as the console's page would: multipart, token and Origin."""
        token = token if token is not None else await self.csrf(from_page)
        fields = {"kind": kind, "csrf_token": token} if token else {"kind": kind}
        return await self.http.post(
            path,
            data=fields,
            files={"file": (name, data, "application/octet-stream")},
            headers={"Origin": BASE, **(headers or {})},
        )


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
    # The whole site: the codec server (/codec) takes an ops console session too.
    assert "path=/;" in attributes + ";" and "secure" not in attributes
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


async def _age_session(sessions: SessionFactory, token: str, **changes: Any) -> None:
    """Move a stored session's clock fields (the console reads the wall clock)."""
    async with sessions() as session:
        row = (
            await session.exec(
                select(ConsoleSession).where(
                    ConsoleSession.token_hash == hashlib.sha256(token.encode()).hexdigest()
                )
            )
        ).one()
        for name, value in changes.items():
            setattr(row, name, value)
        session.add(row)
        await session.commit()


@pytest.mark.parametrize("forgery", ["unknown token", "raw key", "non-ASCII"])
async def test_a_forged_session_redirects_to_login(
    browser: NewBrowser, keys: dict[str, str], forgery: str
):
    me = await browser("viewer")
    genuine = me.http.cookies[COOKIE]
    value = {
        "unknown token": genuine[:-4] + "AAAA",
        "raw key": keys["admin"],
        "non-ASCII": genuine + "é",
    }[forgery]
    me.http.cookies.clear()

    cookie = f"{COOKIE}={value}".encode()  # as bytes: httpx sends str headers as ASCII only
    response = await me.http.get("/console", headers={b"Cookie": cookie})

    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"


@pytest.mark.parametrize("ended", ["expired", "idle"])
async def test_an_expired_or_idle_session_redirects_to_login(
    browser: NewBrowser, sessions: SessionFactory, settings: Settings, ended: str
):
    me = await browser("viewer")
    token = me.http.cookies[COOKIE]
    now = datetime.now(UTC)
    idle = timedelta(minutes=settings.console_idle_timeout_minutes)
    if ended == "expired":
        await _age_session(sessions, token, expires_at=now - timedelta(seconds=1))
    else:
        await _age_session(sessions, token, last_seen_at=now - idle - timedelta(seconds=1))

    response = await me.page("/console")

    assert response.status_code == 303 and response.headers["location"] == "/console/login"


async def test_a_session_in_use_is_not_idle(
    browser: NewBrowser, sessions: SessionFactory, settings: Settings
):
    me = await browser("viewer")
    token = me.http.cookies[COOKIE]
    idle = timedelta(minutes=settings.console_idle_timeout_minutes)
    await _age_session(sessions, token, last_seen_at=datetime.now(UTC) - idle / 2)

    assert (await me.page("/console")).status_code == 200

    async with sessions() as session:
        row = (await session.exec(select(ConsoleSession))).one()
    assert datetime.now(UTC) - row.last_seen_at < timedelta(minutes=1)  # seen again


async def test_a_cookie_copied_before_logout_stops_working_at_once(browser: NewBrowser, api: Api):
    me = await browser("ops")
    case_id = await waiting_case(api)
    token = await me.csrf(case_path(case_id))
    copied = me.http.cookies[COOKIE]
    thief = await browser()
    thief.http.headers["Cookie"] = f"{COOKIE}={copied}"
    assert (await thief.page("/console")).status_code == 200

    assert (await me.submit("/console/logout", {})).status_code == 303

    assert (await thief.page("/console")).status_code == 303
    note = await thief.submit(f"{case_path(case_id)}/notes", {"text": "stolen"}, token=token)
    assert note.status_code == 303 and note.headers["location"] == "/console/login"
    timeline = (await api.get(f"/cases/{case_id}")).json()["timeline"]
    assert not [e for e in timeline if e["kind"] == "note" and "stolen" in e["summary"]]


async def test_revoking_the_key_ends_its_console_sessions(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    me = await browser("viewer")
    assert (await me.page("/console")).status_code == 200

    assert (
        await api.delete(f"/api-keys/{await _key_id(sessions, 'viewer-key')}")
    ).status_code == 200

    assert (await me.page("/console")).status_code == 303


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
    assert "Status: “lost” is not one of the choices offered." in response.text


async def test_the_case_page_shows_the_timeline_and_the_messages(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    await api.customer_link(case_id)  # the customer notice has been stored
    detail = await api.wait_for(case_id)
    me = await browser("viewer")

    response = await me.page(case_path(case_id))

    assert response.status_code == 200
    body = text(response)
    assert detail["subject"] in body and "waiting on customer" in body
    for event in detail["timeline"]:
        assert event["kind"].replace("_", " ") in body and event["summary"] in body
    notice = (await api.get("/messages", params={"case_id": case_id})).json()["items"]
    assert notice
    for message in notice:
        assert message["subject"] in body and message["recipient"]["email"] in body
    assert "<details><summary>" in response.text and "/r/…redacted…" in body  # the text body
    assert detail["trace_url"] in body
    assert "<dt>Depot</dt><dd>ldn-1</dd>" in response.text  # details under their labels


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


async def test_a_second_redelivery_shows_the_409_reason(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    await client_policy(sessions, "failed_delivery", **NO_CHANGES)
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
    assert "Window is needed when the choice is “redelivery window”." in text(response)
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
    assert "VIP customer" in page.text and "Client withdrew the order" in page.text
    assert forms_on(page) == ["notes"]  # a closed case takes a note, nothing else
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
    assert response.headers["location"] == f"{case_path(case_id)}?done=opened"
    # The view after the redirect shows what the opening set going: the next step, the
    # customer's notice and the note typed on the form. (That the very first view already
    # does, waiting for the workflow to settle, is the browser test's: the time-skipping
    # server's describe leaves out the pending workflow task this waits on.)
    await api.customer_link(case_id)
    shown = await me.page(response.headers["location"])
    assert shown.status_code == 200 and form["shipment_id"] in shown.text
    first_view = text(shown)
    assert "Case opened." in first_view and "remind the customer" in first_view
    messages = first_view.split("<h2>Messages</h2>")[1]
    assert "No messages." not in messages and "ada@example.com" in messages
    assert "Note: “Left a card”" in first_view
    detail = await api.wait_for(case_id, "waiting_on_customer")
    assert detail["client_id"] == CLIENT_ID and detail["details"]["depot_id"] == "ldn-1"
    opened = [e for e in detail["timeline"] if e["actor"] == "ops:ops-key"]
    assert opened


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
    label = {"customer.email": "Customer's email", "client_id": "Client"}.get(field)
    label = label or {"shipment_id": "Shipment", "attempted_at": "Attempted at"}[field]
    assert f'<span class="field-error">{label}' in text(response)  # by the input
    assert re.search(f"<li>{label}[ :]", text(response))  # and in the list on top
    assert 'value="Ada Customer"' in response.text  # what was typed is kept
    listed = (await api.get("/cases", params={"q": form["shipment_id"]})).json()
    assert listed["total"] == 0


async def test_ops_report_a_later_failed_attempt_through_the_form(browser: NewBrowser, api: Api):
    case_id = await waiting_case(api)
    me = await browser("ops")
    page = await me.page(case_path(case_id))
    assert 'name="attempt_number" min="2" max="20" required value="2"' in page.text

    response = await me.submit(
        f"{case_path(case_id)}/failed-attempt",
        {"attempt_number": "2", "reason": "access_problem", "driver_id": DRIVER_ID},
    )

    assert response.status_code == 303, response.text
    detail = await api.wait_for(case_id, "waiting_on_customer", subject_contains="attempt 2")
    assert detail["details"]["attempt_number"] == 2
    assert detail["details"]["last_reason"] == "access_problem"


# --- every action of every case type -------------------------------------------------------


def test_every_action_of_every_case_type_has_a_console_form():
    for spec in CASE_TYPES.values():
        actions = actions_for(spec.case_type)

        assert list(actions) == spec.action_names, spec.case_type
        for name, action in actions.items():
            assert action.spec is spec.action(name)
            assert action.uploads == (action.spec.media_type == MULTIPART), name


def forms_on(page: httpx.Response) -> list[str]:
    return FORM.findall(page.text)


async def filed_claim(api: Api, sessions: SessionFactory) -> str:
    """A claim filed through the API (every missing item explained), awaiting its decision."""
    case_id = await open_gathering_claim(api, sessions)
    detail = (await api.get(f"/cases/{case_id}")).json()
    missing = [k for k, v in detail["details"]["checklist"].items() if v == "missing"]
    reasons = {kind: "Not sent yet." for kind in missing}
    response = await api.post(f"/cases/{case_id}/file", json={"missing_reasons": reasons})
    assert response.status_code == 200, response.text
    await wait_until(
        api,
        case_id,
        lambda b: b["status"] == "awaiting_decision" and b["details"]["package_id"],
        "was filed",
    )
    return case_id


async def test_the_case_page_has_a_form_for_each_allowed_action(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    me = await browser("ops")
    failed_delivery = await waiting_case(api)
    gathering = await open_gathering_claim(api, sessions)
    filed = await filed_claim(api, sessions)

    for case_id, expected in [
        (failed_delivery, {"redelivery", "failed-attempt"}),
        (gathering, {"documents", "file"}),
        (filed, {"decision"}),
    ]:
        allowed = (await api.get(f"/cases/{case_id}")).json()["allowed_actions"]
        forms = forms_on(await me.page(case_path(case_id)))

        assert expected <= set(allowed), case_id
        assert sorted(forms) == sorted(allowed), case_id
    assert "documents" not in forms and "file" not in forms  # the filed claim's page


# --- claims in the console -----------------------------------------------------------------


async def test_the_claim_page_shows_the_checklist_and_the_documents_readably(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    case_id = await open_gathering_claim(api, sessions)
    detail = (await api.get(f"/cases/{case_id}")).json()
    me = await browser("viewer")

    page = await me.page(case_path(case_id))

    body = text(page)
    assert page.status_code == 200
    assert re.search(r"Delivery attempt record<br>.*?pill present", body)
    assert re.search(r"Photos of the damage<br>.*?pill missing", body)
    assert "{'" not in body and "[{" not in body  # no Python reprs of the details
    links = CONSOLE_DOCUMENT.findall(page.text)
    assert sorted(links) == sorted(
        f"/console/cases/{case_id}/documents/{doc['id']}" for doc in detail["documents"]
    )
    assert "Filing window" in body and "3 days" in body  # the policy, as a labelled list


async def test_ops_upload_evidence_through_the_console(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    case_id = await open_gathering_claim(api, sessions)
    me = await browser("ops")
    page = await me.page(case_path(case_id))
    assert 'enctype="multipart/form-data"' in page.text and 'type="file" name="file"' in page.text
    image = png()

    response = await me.upload(f"{case_path(case_id)}/documents", "damage_photos", image)

    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{case_path(case_id)}?done=documents"
    detail = await wait_until(
        api,
        case_id,
        lambda b: b["details"]["checklist"]["damage_photos"] == "present",
        "took the photo",
    )
    added = [e for e in detail["timeline"] if e["kind"] == "document_added"]
    assert added[-1]["actor"] == "ops:ops-key"
    photo = next(d for d in detail["documents"] if d["kind"] == "damage_photos")
    assert (await api.get(photo["download_url"])).content == image
    shown = await me.page(response.headers["location"])
    assert "Document added." in shown.text
    assert re.search(r"Photos of the damage<br>.*?pill present", text(shown))


async def test_a_refused_upload_shows_the_reason_and_stores_nothing(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    case_id = await open_gathering_claim(api, sessions)
    me = await browser("ops")
    refusals = [
        ("damage_photos", b"%PDF-1.4\n%%EOF\n", 422, "application/pdf is not accepted"),
        ("proof_of_value", EXE, 422, "unsupported content"),
        ("selfie", png(), 422, "unknown document kind 'selfie'"),
        ("damage_photos", png() + b"\x00" * MAX_UPLOAD, 413, "larger than the"),
    ]

    for kind, data, status, reason in refusals:
        response = await me.upload(f"{case_path(case_id)}/documents", kind, data)

        assert response.status_code == status, kind
        assert 'role="alert"' in response.text and reason in text(response)
        assert "Add evidence:" in response.text and 'id="action-documents"' in response.text
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert [d["kind"] for d in detail["documents"]] == ["attempt_record", "proof_of_delivery"]


async def test_an_upload_without_the_token_or_from_another_site_is_refused(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    case_id = await open_gathering_claim(api, sessions)
    me = await browser("ops")
    path = f"{case_path(case_id)}/documents"

    missing = await me.upload(path, "damage_photos", png(), token="")
    foreign = await me.upload(
        path, "damage_photos", png(), headers={"Origin": "http://evil.example"}
    )
    as_viewer = await (await browser("viewer")).upload(path, "damage_photos", png())

    assert missing.status_code == 403 and "did not come from the console" in missing.text
    assert foreign.status_code == 403 and "another site" in foreign.text
    assert as_viewer.status_code == 403 and "needs the ops role" in as_viewer.text
    detail = (await api.get(f"/cases/{case_id}")).json()
    assert detail["details"]["checklist"]["damage_photos"] == "missing"


async def test_filing_through_the_console_needs_a_reason_for_every_missing_item(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    case_id = await open_gathering_claim(api, sessions)
    me = await browser("ops")
    page = await me.page(case_path(case_id))
    missing = re.findall(r'name="missing_reasons\.([a-z_]+)"', page.text)
    assert sorted(missing) == ["customer_attestation", "damage_photos", "proof_of_value"]
    reasons = {f"missing_reasons.{kind}": f"No {kind} yet." for kind in missing}
    partial = {**reasons, "missing_reasons.proof_of_value": ""}

    refused = await me.submit(f"{case_path(case_id)}/file", partial)
    filed = await me.submit(f"{case_path(case_id)}/file", reasons)

    assert refused.status_code == 422
    assert "Missing reasons must say why each missing item is missing: proof of value." in (
        text(refused)
    )
    assert "No damage_photos yet." in refused.text  # what was typed is kept
    assert filed.status_code == 303, filed.text
    detail = await wait_until(
        api,
        case_id,
        lambda b: b["status"] == "awaiting_decision" and b["details"]["package_id"],
        "was filed",
    )
    page = await me.page(case_path(case_id))
    assert forms_on(page).count("decision") == 1
    package = f"/console/cases/{case_id}/documents/{detail['details']['package_id']}"
    assert f'href="{package}"' in page.text and "Claim package" in page.text


async def test_an_approved_decision_with_an_amount_closes_the_claim_as_paid(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    case_id = await filed_claim(api, sessions)
    me = await browser("ops")
    late_upload = await me.upload(f"{case_path(case_id)}/documents", "damage_photos", png())

    no_amount = await me.submit(f"{case_path(case_id)}/decision", {"decision": "approved"})
    approved = await me.submit(
        f"{case_path(case_id)}/decision",
        {"decision": "approved", "amount": "120.00", "reason": "", "requested.damage_photos": ""},
    )

    assert late_upload.status_code == 409 and "cannot be added now" in late_upload.text
    assert no_amount.status_code == 422
    assert "Amount is needed when the decision is “approved”." in text(no_amount)
    assert approved.status_code == 303, approved.text
    closed = await wait_until(api, case_id, lambda b: b["status"] == "closed", "closed")
    assert closed["resolution"] == "paid"
    decision = [e for e in closed["timeline"] if e["kind"] == "decision"]
    assert decision[0]["actor"] == "ops:ops-key"


async def test_more_information_through_the_console_asks_for_the_checked_items(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    case_id = await filed_claim(api, sessions)
    me = await browser("ops")

    response = await me.submit(
        f"{case_path(case_id)}/decision",
        {
            "decision": "more_information",
            "reason": "Photos of the contents?",
            "requested.damage_photos": "on",
        },
    )

    assert response.status_code == 303, response.text
    again = await wait_until(
        api,
        case_id,
        lambda b: b["status"] == "gathering_evidence" and b["details"]["round"] == 2,
        "went back to gathering",
    )
    assert "More information requested: damage_photos" in [e["summary"] for e in again["timeline"]]


async def test_a_console_session_downloads_the_cases_documents(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    case_id = await filed_claim(api, sessions)
    detail = (await api.get(f"/cases/{case_id}")).json()
    me = await browser("viewer")
    links = CONSOLE_DOCUMENT.findall((await me.page(case_path(case_id))).text)
    assert len(links) == len(detail["documents"]) == 3  # two records and the package

    for doc in detail["documents"]:
        path = f"/console/cases/{case_id}/documents/{doc['id']}"
        download = await me.page(path)
        through_api = await api.get(doc["download_url"])

        assert download.status_code == 200 and download.content == through_api.content
        for header in ("content-type", "content-disposition", "x-content-type-options"):
            assert download.headers[header] == through_api.headers[header]
    assert (await me.page(f"/console/cases/{case_id}/documents/nope")).status_code == 404
    logged_out = await (await browser()).page(links[0])
    assert logged_out.status_code == 303 and logged_out.headers["location"] == "/console/login"


async def test_a_viewer_sees_the_claim_but_no_action_forms(
    browser: NewBrowser, api: Api, sessions: SessionFactory
):
    case_id = await open_gathering_claim(api, sessions)
    me = await browser("viewer")

    page = await me.page(case_path(case_id))

    assert page.status_code == 200 and "Checklist" in page.text
    assert forms_on(page) == [] and "Actions" not in page.text
    assert 'type="file"' not in page.text


# --- drivers in the console ------------------------------------------------------------------


def _onboarding_form(**changes: str) -> dict[str, str]:
    form = {
        "name": "Olu Newdriver",
        "email": "olu@example.com",
        "phone": "",
        "driver_id": "",
        "depot_id": "ldn-1",
        "vehicle_type": "cargo_bike",
        "planned_start_date": (datetime.now(UTC) + timedelta(days=14)).strftime("%Y-%m-%d"),
    }
    return form | changes


async def test_ops_onboard_a_driver_through_the_form(browser: NewBrowser, api: Api):
    me = await browser("ops")
    path = "/console/cases/new/driver-onboarding"
    page = await me.page(path)
    assert page.status_code == 200 and "London East" in page.text and "cargo bike" in page.text

    response = await me.submit(path, _onboarding_form(driver_id="drv-console"), from_page=path)

    assert response.status_code == 303, response.text
    case_id = "driver-onboarding-drv-console"
    assert response.headers["location"] == f"{case_path(case_id)}?done=opened"
    await api.wait_for(case_id, "collecting_documents")
    shown = await me.page(case_path(case_id))
    assert 'id="action-documents"' in shown.text
    upload_form = shown.text.split('id="action-documents"')[1].split("</form>")[0]
    assert '<option value="tax_form"' in upload_form
    assert 'value="vehicle_registration"' not in upload_form  # not asked of a cargo bike
    assert "Tax form" in shown.text and "requested" in shown.text  # the checklist card


async def test_an_invalid_onboarding_form_names_the_field(browser: NewBrowser, api: Api):
    me = await browser("ops")
    path = "/console/cases/new/driver-onboarding"
    form = _onboarding_form(driver_id="drv-late", planned_start_date="2001-01-01")

    response = await me.submit(path, form, from_page=path)

    assert response.status_code == 422
    assert '<span class="field-error">Planned start date' in response.text
    assert 'value="Olu Newdriver"' in response.text
    assert (await api.get("/drivers/drv-late")).status_code == 404


async def test_ops_upload_and_review_a_drivers_documents_through_the_console(
    browser: NewBrowser, api: Api
):
    response = await api.post("/cases/driver-onboardings", json=onboarding())
    case_id = response.json()["case_id"]
    await api.wait_for(case_id, "collecting_documents")
    me = await browser("ops")
    for kind in ("driving_licence", "tax_form"):
        uploaded = await me.upload(f"{case_path(case_id)}/documents", kind, png())
        assert uploaded.status_code == 303, uploaded.text
    detail = await wait_until(
        api, case_id, lambda b: len(b["details"]["documents"]) == 2, "took both documents"
    )
    documents = {d["kind"]: d["id"] for d in detail["details"]["documents"]}
    page = await me.page(case_path(case_id))
    for document_id in documents.values():
        assert f'id="action-review-{document_id}"' in page.text
    review = f"{case_path(case_id)}/review"
    licence = {"document_id": documents["driving_licence"], "decision": "approved"}

    undated = await me.submit(review, licence, from_page=case_path(case_id))
    assert undated.status_code == 422 and "expires_on" in text(undated)
    expires_on = (datetime.now(UTC) + timedelta(days=400)).strftime("%Y-%m-%d")
    approved = await me.submit(review, licence | {"expires_on": expires_on})
    rejected = await me.submit(
        review,
        {"document_id": documents["tax_form"], "decision": "rejected", "reason": "Unsigned."},
    )

    assert approved.status_code == 303 and rejected.status_code == 303, rejected.text
    detail = (await api.get(f"/cases/{case_id}")).json()
    states = {i["kind"]: i["status"] for i in detail["details"]["checklist"]}
    assert states["driving_licence"] == "approved" and states["tax_form"] == "requested"
    shown = await me.page(approved.headers["location"])
    assert "Review recorded." in shown.text


async def test_the_case_page_names_its_people_and_shows_times_in_the_depots_zone(
    browser: NewBrowser, api: Api
):
    case_id = await waiting_case(api)
    await api.customer_link(case_id)
    viewer, ops = await browser("viewer"), await browser("ops")

    seen_by_viewer = text(await viewer.page(case_path(case_id)))
    seen_by_ops = text(await ops.page(case_path(case_id)))

    sidebar = seen_by_ops.split('aria-label="People"')[1].split("</aside>")[0]
    for words in ("Ada Customer", "1 Main St, London, E1 6AN, GB", "Dee Driver", "Acme Retail"):
        assert words in sidebar
    assert "London East" in sidebar and "Dispatcher: Dana Dispatch" in sidebar
    assert "ada@example.com" in sidebar and "+44 20 1234" in sidebar  # ops see contacts
    viewer_sidebar = seen_by_viewer.split('aria-label="People"')[1].split("</aside>")[0]
    assert "Ada Customer" in viewer_sidebar and "ada@example.com" not in viewer_sidebar
    assert "Europe/London" in seen_by_ops
    assert re.search(r'title="[^"]+ UTC">[^<]+ GMT</time>', seen_by_ops)  # December: GMT
    assert "Note: “No answer at the door”" in seen_by_ops  # the open form's note


async def test_a_delivered_case_shows_its_resolution_and_its_new_title(
    browser: NewBrowser, api: Api, time_env
):
    case_id = await waiting_case(api)
    booked = await api.post(
        f"/cases/{case_id}/redelivery",
        json={
            "option": "neighbour",
            "neighbour_name": "Bob",
            "neighbour_address": "3 Main St",
            "instructions": "Please ring twice",
        },
        role="ops",
    )
    assert booked.status_code == 200, booked.text
    await api.wait_for(case_id, "redelivery_scheduled")
    delivered = await api.post(
        f"/cases/{case_id}/delivery-outcome",
        json={"outcome": "delivered", "attempted_at": datetime.now(UTC).isoformat()},
        role="ops",
    )
    assert delivered.status_code == 200, delivered.text
    await api.wait_for(case_id, "closed")
    me = await browser("viewer")

    page = text(await me.page(case_path(case_id)))

    assert "delivered after 1 failed attempt" in page.split("</h1>")[0]
    assert 'class="badge status-done"' in page
    assert "Delivered: The parcel was delivered." in page and "<dt>Closed</dt>" in page
    assert "for the driver: “Please ring twice”" in page  # on the booking, in the timeline
    assert 'id="action-notes"' not in page  # a viewer takes no action
    ops = await browser("ops")
    await time_env.client.get_workflow_handle(case_id).result()
    assert 'id="action-notes"' in (await ops.page(case_path(case_id))).text
    noted = await ops.submit(
        f"{case_path(case_id)}/notes",
        {"text": "Customer rang to say thanks"},
        from_page=case_path(case_id),
    )
    assert noted.status_code == 303, noted.text
    assert "Customer rang to say thanks" in text(await ops.page(noted.headers["location"]))
