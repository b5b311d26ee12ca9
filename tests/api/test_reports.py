"""Client reporting over HTTP on both databases (the real app, the real worker on the
time-skipping server): `reporting` set on a client and validated (hour, contacts by id or
email), what it says when nobody would receive the reports; the figures of a period as JSON,
computed from stops posted to `/deliveries`; a run over HTTP sent once, its messages with the
charts inline and the PDF and CSV attached, the stored charts served; every bad input a 422
naming its field."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from typing import Any
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import DEPOT_ID, Api, assert_problem

LONDON = ZoneInfo("Europe/London")
SHOP = "shop"


def last_week(now: dt.datetime | None = None) -> tuple[str, dt.date]:
    """The last complete ISO week in London: its label and its Monday."""
    today = (now or dt.datetime.now(dt.UTC)).astimezone(LONDON).date()
    monday = today - dt.timedelta(days=today.weekday() + 7)
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}", monday


def client_body(**reporting: Any) -> dict[str, Any]:
    return {
        "id": SHOP,
        "name": "Shop & Co",
        "timezone": "Europe/London",
        "contacts": [
            {"kind": "reporting", "name": "Rita Reports", "email": "rita@shop.example"},
            {"kind": "reporting", "name": "Rob Reports", "email": "rob@shop.example"},
            {"kind": "account_manager", "name": "Adam Manager", "email": "adam@ours.example"},
        ],
        "reporting": reporting or {"weekly": True, "daily": True, "hour": 6},
    }


async def create_shop(api: Api, **reporting: Any) -> dict[str, Any]:
    response = await api.post("/clients", json=client_body(**reporting), role="admin")
    assert response.status_code == 201, response.text
    return response.json()


def stop(shipment: str, at: dt.datetime, **fields: Any) -> dict[str, Any]:
    body = {
        "shipment_id": shipment,
        "client_id": SHOP,
        "depot_id": DEPOT_ID,
        "attempted_at": at.astimezone(dt.UTC).isoformat(),
        "outcome": "delivered",
        "attempt_number": 1,
    }
    body.update(fields)
    return body


async def post_week(api: Api, monday: dt.date) -> None:
    """Six stops: five first attempts (four delivered: 80.0%), a second attempt; two delivered
    with a promised day, one on time (50.0%); a stop at 23:59 on Sunday (in) and one at 00:00
    the next Monday (out)."""

    def day(offset: int, hour: int = 10, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(
            monday + dt.timedelta(days=offset), dt.time(hour, minute), tzinfo=LONDON
        )

    response = await api.post(
        "/deliveries",
        json=[
            stop("A1", day(0), promised_on=(monday + dt.timedelta(days=1)).isoformat()),
            stop("A2", day(2), promised_on=(monday + dt.timedelta(days=1)).isoformat()),
            stop("A3", day(3)),
            stop("A4", day(4), outcome="failed"),
            stop("A4", day(5), attempt_number=2),
            stop("A5", day(6, 23, 59)),
            stop("NEXT", day(7, 0, 0)),
        ],
    )
    assert response.status_code == 200, response.text


# --- the client's settings ------------------------------------------------------------------


async def test_reporting_is_set_with_the_client_and_contacts_given_by_email_are_kept_as_ids(api):
    body = client_body(weekly=True, hour=6, contacts=["ROB@shop.example"])

    created = await api.post("/clients", json=body, role="admin")

    assert created.status_code == 201, created.text
    client = created.json()
    rob = next(c for c in client["contacts"] if c["email"] == "rob@shop.example")
    assert client["reporting"] == {
        "daily": False,
        "weekly": True,
        "hour": 6,
        "contacts": [rob["id"]],
        "recipients": [rob["id"]],
        "status": "ok",
    }
    assert (await api.get(f"/clients/{SHOP}")).json()["reporting"]["status"] == "ok"


@pytest.mark.parametrize(
    ("reporting", "field"),
    [
        ({"hour": 24}, "reporting.hour"),
        ({"hour": -1}, "reporting.hour"),
        ({"hour": "7"}, "reporting.hour"),
        ({"daily": "yes"}, "reporting.daily"),
        ({"weekly": True, "contacts": ["nobody@shop.example"]}, "reporting.contacts[0]"),
        ({"weekly": True, "contacts": ["adam@ours.example"]}, "reporting.contacts[0]"),
        (
            {"weekly": True, "contacts": ["rita@shop.example", "RITA@shop.example"]},
            "reporting.contacts[1]",
        ),
        ({"weekly": True, "cc": ["x@example.com"]}, "reporting.cc"),
    ],
)
async def test_bad_reporting_settings_are_422_naming_the_field(api, reporting, field):
    response = await api.post("/clients", json=client_body(**reporting), role="admin")

    assert_problem(response, 422, field)
    assert (await api.get(f"/clients/{SHOP}")).status_code == 404


async def test_patch_changes_only_the_reporting_fields_given(api):
    client = await create_shop(api, weekly=True, daily=False, hour=6)
    rita = next(c["id"] for c in client["contacts"] if c["email"] == "rita@shop.example")

    patched = await api.raw.patch(
        f"/clients/{SHOP}",
        json={"reporting": {"daily": True, "contacts": [rita]}},
        headers={"Authorization": f"Bearer {api.keys['admin']}"},
    )

    assert patched.status_code == 200, patched.text
    reporting = patched.json()["reporting"]
    assert (reporting["daily"], reporting["weekly"], reporting["hour"]) == (True, True, 6)
    assert reporting["contacts"] == reporting["recipients"] == [rita]
    refused = await api.raw.patch(
        f"/clients/{SHOP}",
        json={"reporting": {"hour": 99}},
        headers={"Authorization": f"Bearer {api.keys['ops']}"},
    )
    assert_problem(refused, 403)


async def test_a_client_with_reports_on_and_no_reporting_contact_says_so(api):
    body = client_body(weekly=True)
    body["contacts"] = [c for c in body["contacts"] if c["kind"] != "reporting"]
    created = await api.post("/clients", json=body, role="admin")
    assert created.json()["reporting"]["status"] == "no_reporting_contact"

    added = await api.post(
        f"/clients/{SHOP}/contacts",
        json={"kind": "reporting", "name": "Rae Reports", "email": "rae@shop.example"},
        role="admin",
    )

    assert added.status_code == 201, added.text
    assert added.json()["reporting"]["status"] == "ok"
    assert_problem(
        await api.post(f"/clients/{SHOP}/contacts", json={"kind": "reporting"}, role="admin"),
        422,
        "name",
    )


# --- the figures ------------------------------------------------------------------------------


async def test_the_figures_of_a_week_as_json(api):
    await create_shop(api)
    label, monday = last_week()
    await post_week(api, monday)

    response = await api.get(f"/reports/{SHOP}", params={"kind": "weekly", "period": label})

    assert response.status_code == 200, response.text
    body = response.json()
    figures = body["report"]["figures"]
    assert (figures["period"], figures["start"]) == (label, monday.isoformat())
    assert figures["stops_attempted"] == 6  # NEXT (Monday 00:00) is the week after
    assert figures["first_attempt_success"] == {
        "numerator": 4,
        "denominator": 5,
        "percent": "80.0",
    }
    assert figures["on_time"] == {"numerator": 1, "denominator": 2, "percent": "50.0"}
    assert figures["failed_by_reason"] == {"reason not reported": 1}
    assert figures["claims_per_1000_stops"] == {"count": 0, "base": 6, "value": "0.00"}
    assert figures["claims_filed_within_72h"]["percent"] is None  # no data
    assert body["report"]["previous"]["first_attempt_success"]["percent"] is None
    assert len(body["report"]["trend"]) == 4 and len(body["report"]["series"]) == 12
    assert body["complete"] is True and body["sent"] is None
    row = next(line for line in body["table"] if line["name"] == "First-attempt success")
    assert (row["current"], row["previous"], row["trend"][-1]) == ("80.0%", "no data", "80.0%")
    # the default period is the last complete week
    default = (await api.get(f"/reports/{SHOP}")).json()
    assert default["report"]["period"] == label


async def test_the_figures_of_a_day(api):
    await create_shop(api)
    _, monday = last_week()
    await post_week(api, monday)
    sunday = (monday + dt.timedelta(days=6)).isoformat()

    body = (await api.get(f"/reports/{SHOP}", params={"kind": "daily", "period": sunday})).json()

    assert body["report"]["figures"]["stops_attempted"] == 1  # A5 at 23:59
    assert body["report"]["exceptions"]["claims_opened"] == []
    assert body["report"]["series"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "monthly"}, "kind"),
        ({"kind": "weekly", "period": "2026-48"}, "period"),
        ({"kind": "weekly", "period": "2026-11-25"}, "period"),
        ({"kind": "daily", "period": "2026-W48"}, "period"),
        ({"kind": "daily", "period": "2026-13-01"}, "period"),
        ({"kind": "daily", "period": "x" * 17}, "period"),
        ({"kind": "daily", "period": "9999-12-31"}, "period"),
        ({"kind": "daily", "period": "0001-01-01"}, "period"),
    ],
)
async def test_a_bad_kind_or_period_is_422_naming_it(api, params, field):
    await create_shop(api)

    assert_problem(await api.get(f"/reports/{SHOP}", params=params), 422, field)


async def test_an_unknown_client_is_404(api):
    assert_problem(await api.get("/reports/nobody"), 404)
    assert_problem(await api.get("/reports/nobody/charts/trend.png"), 404)


# --- a run over HTTP ---------------------------------------------------------------------------


async def test_a_run_over_http_is_sent_once_with_its_charts_pdf_and_csv(api):
    await create_shop(api)
    label, monday = last_week()
    await post_week(api, monday)
    run = {"client_id": SHOP, "kind": "weekly", "period": label}

    first = await api.post("/reports/runs", json=run)
    again = await api.post("/reports/runs", json=run)

    assert first.status_code == 201, first.text
    key = f"report-weekly-{SHOP}-{label}"
    assert (first.json()["run_id"], first.json()["outcome"], first.json()["recipients"]) == (
        key,
        "sent",
        2,
    )
    assert again.status_code == 200 and again.json()["outcome"] == "already_sent"
    messages = (await api.get("/messages", params={"case_id": key})).json()["items"]
    assert sorted(m["recipient"]["email"] for m in messages) == [
        "adam@ours.example",
        "rita@shop.example",
        "rob@shop.example",
    ]
    email = next(m for m in messages if m["recipient"]["email"] == "rita@shop.example")
    inline = [a for a in email["attachments"] if a["disposition"] == "inline"]
    files = [a for a in email["attachments"] if a["disposition"] == "attachment"]
    assert [(a["content_id"], a["content_type"]) for a in inline] == [
        ("trend", "image/png"),
        ("failed-reasons", "image/png"),
        ("claims", "image/png"),
    ]
    assert [(a["name"], a["content_type"]) for a in files] == [
        (f"{key}.pdf", "application/pdf"),
        (f"{key}.csv", "text/csv"),
    ]
    assert 'src="cid:trend"' in email["html_body"]
    assert "First-attempt success: 80.0%" in email["text_body"]

    chart = await api.get(f"/reports/{SHOP}/charts/trend.png", params={"period": label})
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")
    trend_ref = next(a for a in inline if a["content_id"] == "trend")
    assert hashlib.sha256(chart.content).hexdigest() == trend_ref["sha256"]  # what was emailed
    latest = await api.get(f"/reports/{SHOP}/charts/claims.png")  # the latest report's
    assert latest.status_code == 200 and latest.content.startswith(b"\x89PNG")
    csv_file = await api.get(f"/reports/{SHOP}/files/csv", params={"period": label})
    assert csv_file.status_code == 200 and csv_file.text.startswith("row,id,attempt_number")
    assert csv_file.text.count("\r\nstop,") == 6
    pdf_file = await api.get(f"/reports/{SHOP}/files/pdf", params={"period": label})
    assert pdf_file.content.startswith(b"%PDF-")

    body = (await api.get(f"/reports/{SHOP}", params={"period": label})).json()
    assert body["sent"]["status"] == "sent" and body["sent"]["recipients"] == 3
    assert body["sent"]["charts"]["trend"] == (
        f"/reports/{SHOP}/charts/trend.png?kind=weekly&period={label}"
    )
    # the stored figures are what the JSON computes now, from the same function
    assert body["report"]["figures"]["on_time"]["percent"] == "50.0"


async def test_charts_that_were_never_rendered_are_404_and_daily_reports_have_none(api):
    await create_shop(api)
    label, _ = last_week()

    missing = await api.get(f"/reports/{SHOP}/charts/trend.png", params={"period": label})
    unknown = await api.get(f"/reports/{SHOP}/charts/pie.png")
    daily = await api.get(f"/reports/{SHOP}/charts/trend.png", params={"kind": "daily"})

    assert assert_problem(missing, 404)["detail"].startswith("no weekly report of 'shop'")
    assert_problem(unknown, 404)
    assert_problem(daily, 422, "kind")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"client_id": "nobody"}, "client_id"),
        ({"kind": "monthly"}, "kind"),
        ({"period": "2026-W99"}, "period"),
        ({"period": "2999-W01"}, "period"),
        ({"period": None}, "period"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_a_bad_run_is_422_naming_the_field(api, change, field):
    await create_shop(api)
    label, _ = last_week()
    body = {"client_id": SHOP, "kind": "weekly", "period": label, **change}

    assert_problem(await api.post("/reports/runs", json=body), 422, field)


async def test_a_run_of_the_current_week_is_422_it_is_not_over(api):
    await create_shop(api)
    today = dt.datetime.now(dt.UTC).astimezone(LONDON).date()
    year, week, _ = today.isocalendar()

    response = await api.post(
        "/reports/runs", json={"client_id": SHOP, "kind": "weekly", "period": f"{year}-W{week:02d}"}
    )

    assert "is not over yet" in assert_problem(response, 422, "period")["detail"]


async def test_viewers_cannot_run_a_report(api):
    await create_shop(api)
    label, _ = last_week()
    response = await api.post(
        "/reports/runs", json={"client_id": SHOP, "kind": "weekly", "period": label}, role="viewer"
    )
    assert_problem(response, 403)


# --- the console ------------------------------------------------------------------------------

BASE = "http://testserver"


async def console(app: FastAPI, keys: dict[str, str], role: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    response = await http.post("/console/login", data={"api_key": keys[role]})
    assert response.status_code == 303, response.text
    return http


def csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


async def test_the_console_runs_a_report_and_shows_the_latest_with_its_charts(api, app, keys):
    await create_shop(api)
    label, monday = last_week()
    await post_week(api, monday)
    ops = await console(app, keys, "ops")
    viewer = await console(app, keys, "viewer")
    try:
        page = await ops.get(f"/console/reports/{SHOP}")
        assert page.status_code == 200, page.text
        assert "No weekly report has been run yet." in page.text
        assert "Rita Reports" in page.text and "the account manager copied" in page.text

        ran = await ops.post(
            f"/console/reports/{SHOP}/runs",
            data={"kind": "weekly", "period": label, "csrf_token": csrf(page)},
            headers={"Origin": BASE},
        )

        assert ran.status_code == 303, ran.text
        assert f"report-weekly-{SHOP}-{label}" in unquote_plus(ran.headers["location"])
        shown = await viewer.get(ran.headers["location"])
        assert shown.status_code == 200
        assert "img-src 'self'" in shown.headers["content-security-policy"]
        assert f"Done: report-weekly-{SHOP}-{label}: sent" in html.unescape(shown.text)
        assert "<strong>80.0%</strong>" in shown.text
        charts = re.findall(r'<img src="([^"]+)"', shown.text)
        assert len(charts) == 3
        for src in charts:
            chart = await viewer.get(html.unescape(src))
            assert chart.status_code == 200 and chart.content.startswith(b"\x89PNG")
        assert "Run a report now" not in shown.text  # viewers see no forms

        refused = await viewer.post(
            f"/console/reports/{SHOP}/runs",
            data={"kind": "weekly", "period": label, "csrf_token": csrf(shown)},
            headers={"Origin": BASE},
        )
        assert refused.status_code == 403
        bad = await ops.post(
            f"/console/reports/{SHOP}/runs",
            data={"kind": "weekly", "period": "W48", "csrf_token": csrf(page)},
            headers={"Origin": BASE},
        )
        assert bad.status_code == 422 and "not an ISO week" in html.unescape(bad.text)
        index = await viewer.get("/console/reports")
        assert index.status_code == 200 and f'href="/console/reports/{SHOP}"' in index.text
    finally:
        await ops.aclose()
        await viewer.aclose()
