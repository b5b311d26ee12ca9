"""Client reporting end to end on the real stack (`tests/e2e/stack.py`: a Temporal dev server,
the worker and the API over HTTP, the demo data, whose client gets both reports at 07:00 London
time): stops posted to `/deliveries`, a weekly report run over HTTP, the email stored with its
inline charts, PDF and CSV; and the schedules, which only a real server has: created at the
worker's start at the client's hour in its zone, moved and removed as its settings change,
paused and resumed with a note (and kept paused through a change); scheduled runs (backfilled
at their nominal times) reporting the day or week before, each period sent once however often
its nominal time runs."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pypdf
import pytest
from temporalio.client import ScheduleBackfill, ScheduleOverlapPolicy

from activities.rendering import human_date
from core.bootstrap import DEMO_CLIENT_ID, DEMO_DEPOT_ID
from core.db import make_engine, make_session_factory
from core.report_schedules import sync_all_report_schedules
from core.settings import Settings

pytestmark = pytest.mark.e2e

LONDON = ZoneInfo("Europe/London")
OPERATIONS = "operations.demo-shop@example.com"  # the demo client's reporting contact
MANAGER = "avery.example.demo-shop@example.com"


def last_week() -> tuple[str, dt.date]:
    today = dt.datetime.now(LONDON).date()
    monday = today - dt.timedelta(days=today.weekday() + 7)
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}", monday


def last_nominal(hour: int, *, monday: bool) -> dt.datetime:
    """The latest `hour`:00 London time (on a Monday) that has passed."""
    now = dt.datetime.now(LONDON)
    day = now.date() - dt.timedelta(days=now.weekday() if monday else 0)
    nominal = dt.datetime.combine(day, dt.time(hour), tzinfo=LONDON)
    if nominal > now:
        nominal -= dt.timedelta(days=7 if monday else 1)
    return nominal


def stop(shipment: str, at: dt.datetime, **fields: Any) -> dict[str, Any]:
    body = {
        "shipment_id": shipment,
        "client_id": DEMO_CLIENT_ID,
        "depot_id": DEMO_DEPOT_ID,
        "attempted_at": at.astimezone(dt.UTC).isoformat(),
        "outcome": "delivered",
        "attempt_number": 1,
    }
    body.update(fields)
    return body


async def reports_when(http: httpx.AsyncClient, check: Any, what: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(150):
        response = await http.get(f"/clients/{DEMO_CLIENT_ID}/reports")
        body = response.json()
        if response.status_code == 200 and check(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"the report schedules never {what}: {body}")


def schedule(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(s for s in body["schedules"] if s["kind"] == kind)


async def messages(http: httpx.AsyncClient, report: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await http.get("/messages", params={"case_id": report, "limit": 100})
    ).json()["items"]
    return items


async def test_stops_in_a_weekly_report_over_http_emailed_with_its_charts_pdf_and_csv(stack):
    http, _ = stack
    label, monday = last_week()
    tuesday = dt.datetime.combine(monday + dt.timedelta(days=1), dt.time(10), tzinfo=LONDON)
    response = await http.post(
        "/deliveries",
        json=[
            stop("R-1", tuesday, promised_on=(monday + dt.timedelta(days=1)).isoformat()),
            stop("R-2", tuesday + dt.timedelta(hours=1), outcome="failed"),
            stop("R-2", tuesday + dt.timedelta(days=1), attempt_number=2),
        ],
    )
    assert response.status_code == 200, response.text

    run = await http.post(
        "/reports/runs", json={"client_id": DEMO_CLIENT_ID, "kind": "weekly", "period": label}
    )

    assert run.status_code == 201, run.text
    key = f"report-weekly-{DEMO_CLIENT_ID}-{label}"
    assert (run.json()["run_id"], run.json()["outcome"]) == (key, "sent")
    stored = await messages(http, key)
    assert sorted(m["recipient"]["email"] for m in stored) == sorted([OPERATIONS, MANAGER])
    email = next(m for m in stored if m["recipient"]["email"] == OPERATIONS)
    assert email["status"] == "sent"
    assert email["subject"] == f"Weekly performance report for Demo Shop Ltd: {label}"
    assert [
        (a["disposition"], a["content_id"], a["content_type"]) for a in email["attachments"]
    ] == [
        ("attachment", None, "application/pdf"),
        ("attachment", None, "text/csv"),
        ("inline", "trend", "image/png"),
        ("inline", "failed-reasons", "image/png"),
        ("inline", "claims", "image/png"),
    ]
    assert "First-attempt success: 50.0%" in email["text_body"]  # R-1 of R-1, R-2
    assert "On-time rate: 100.0%" in email["text_body"]
    for cid in ("trend", "failed-reasons", "claims"):
        assert f'src="cid:{cid}"' in email["html_body"]
    chart = await http.get(f"/reports/{DEMO_CLIENT_ID}/charts/failed-reasons.png")
    assert chart.status_code == 200 and chart.content.startswith(b"\x89PNG")
    pdf = await http.get(f"/reports/{DEMO_CLIENT_ID}/files/pdf", params={"period": label})
    reader = pypdf.PdfReader(io.BytesIO(pdf.content))
    text = reader.pages[0].extract_text()
    assert f"Weekly performance report {label}" in text and "Demo Shop Ltd" in text
    assert sum(len(page.images) for page in reader.pages) == 3
    rows = await http.get(f"/reports/{DEMO_CLIENT_ID}/files/csv", params={"period": label})
    assert rows.text.count("\r\nstop,") == 3
    again = await http.post(
        "/reports/runs", json={"client_id": DEMO_CLIENT_ID, "kind": "weekly", "period": label}
    )
    assert again.status_code == 200 and again.json()["outcome"] == "already_sent"
    assert len(await messages(http, key)) == 2


async def test_the_schedules_follow_the_settings_and_pause_and_resume_with_a_note(stack, tmp_path):
    http, env = stack
    # what the worker does when it starts (worker.run): every client that gets reports
    engine = make_engine(Settings(data_dir=tmp_path).resolved_database_url)
    try:
        synced = await sync_all_report_schedules(
            env.client, make_session_factory(engine), task_queue="casedesk"
        )
    finally:
        await engine.dispose()
    assert [(t.client_id, t.kind.value, t.hour) for t in synced] == [
        (DEMO_CLIENT_ID, "daily", 7),
        (DEMO_CLIENT_ID, "weekly", 7),
    ]
    body = await reports_when(
        http, lambda b: all(s["exists"] for s in b["schedules"]), "were created"
    )
    daily, weekly = schedule(body, "daily"), schedule(body, "weekly")
    assert (daily["schedule_id"], weekly["schedule_id"]) == (
        "reports-daily-demo-shop",
        "reports-weekly-demo-shop",
    )
    assert (daily["timezone"], daily["hour"], daily["paused"]) == ("Europe/London", 7, False)
    assert daily["catchup_window_seconds"] == 23 * 3600
    assert weekly["catchup_window_seconds"] == 6 * 86400
    days = []
    for at in daily["next_runs"]:
        local = dt.datetime.fromisoformat(at).astimezone(LONDON)
        assert (local.hour, local.minute) == (7, 0)
        days.append(local.date())
    assert [b - a for a, b in zip(days, days[1:], strict=False)] == [dt.timedelta(days=1)] * 2
    for at in weekly["next_runs"]:
        local = dt.datetime.fromisoformat(at).astimezone(LONDON)
        assert (local.weekday(), local.hour, local.minute) == (0, 7, 0)
    described = await env.client.get_schedule_handle("reports-weekly-demo-shop").describe()
    assert described.schedule.policy.overlap is ScheduleOverlapPolicy.BUFFER_ONE

    moved = await http.patch(f"/clients/{DEMO_CLIENT_ID}", json={"reporting": {"hour": 9}})
    assert moved.status_code == 200, moved.text
    body = await reports_when(http, lambda b: schedule(b, "daily")["hour"] == 9, "moved to 09:00")
    for at in schedule(body, "weekly")["next_runs"]:
        assert dt.datetime.fromisoformat(at).astimezone(LONDON).hour == 9

    paused = await http.post(
        f"/clients/{DEMO_CLIENT_ID}/reports/pause", json={"note": "client migrating systems"}
    )
    assert paused.status_code == 200, paused.text
    assert all(s["paused"] for s in paused.json()["schedules"])
    assert "client migrating systems" in schedule(paused.json(), "daily")["note"]
    # a change of settings (a sync) keeps them paused
    await http.patch(f"/clients/{DEMO_CLIENT_ID}", json={"reporting": {"hour": 8}})
    body = await reports_when(http, lambda b: schedule(b, "daily")["hour"] == 8, "moved to 08:00")
    assert all(s["paused"] for s in body["schedules"])

    resumed = await http.post(
        f"/clients/{DEMO_CLIENT_ID}/reports/resume", json={"note": "done", "kind": "daily"}
    )
    assert resumed.status_code == 200, resumed.text
    assert schedule(resumed.json(), "daily")["paused"] is False
    assert schedule(resumed.json(), "weekly")["paused"] is True

    off = await http.patch(f"/clients/{DEMO_CLIENT_ID}", json={"reporting": {"daily": False}})
    assert off.status_code == 200
    body = await reports_when(
        http, lambda b: not schedule(b, "daily")["exists"], "deleted the daily schedule"
    )
    assert schedule(body, "weekly")["exists"]
    refused = await http.post(
        f"/clients/{DEMO_CLIENT_ID}/reports/pause", json={"note": "x", "kind": "daily"}
    )
    assert refused.status_code == 409, refused.text
    assert (await http.post(f"/clients/{DEMO_CLIENT_ID}/reports/pause", json={})).status_code == 422


async def backfill(env: Any, kind: str, *nominals: dt.datetime) -> None:
    handle = env.client.get_schedule_handle(f"reports-{kind}-demo-shop")
    await handle.backfill(
        *(
            ScheduleBackfill(
                start_at=n - dt.timedelta(minutes=1),
                end_at=n + dt.timedelta(minutes=1),
                overlap=ScheduleOverlapPolicy.ALLOW_ALL,
            )
            for n in nominals
        )
    )


async def runs_when(http: httpx.AsyncClient, kind: str, count: int) -> list[dict[str, Any]]:
    body = await reports_when(
        http,
        lambda b: [r["status"] for r in schedule(b, kind)["recent_runs"]] == ["completed"] * count,
        f"completed {count} {kind} runs",
    )
    runs = schedule(body, kind)["recent_runs"]
    return [(await http.get(f"/reports/runs/{run['run_id']}")).json() for run in runs]


async def test_scheduled_runs_report_the_period_before_their_nominal_time_once(stack):
    """Three daily runs an outage missed, and last Monday's weekly run, started late (their
    nominal times backfilled): each reports its own period, from its nominal time in London;
    the same nominal times again send nothing more."""
    http, env = stack
    synced = await http.patch(f"/clients/{DEMO_CLIENT_ID}", json={"reporting": {"hour": 7}})
    assert synced.status_code == 200, synced.text
    await reports_when(http, lambda b: all(s["exists"] for s in b["schedules"]), "existed")
    latest = last_nominal(7, monday=False)
    nominals = [latest - dt.timedelta(days=n) for n in (2, 1, 0)]

    await backfill(env, "daily", *nominals)
    daily = await runs_when(http, "daily", 3)

    periods = [(n.astimezone(LONDON).date() - dt.timedelta(days=1)).isoformat() for n in nominals]
    assert sorted(r["period"] for r in daily) == periods
    assert {r["outcome"] for r in daily} == {"sent"}
    for period in periods:
        stored = await messages(http, f"report-daily-demo-shop-{period}")
        assert sorted(m["recipient"]["email"] for m in stored) == sorted([OPERATIONS, MANAGER])
        to_client = next(m for m in stored if m["recipient"]["email"] == OPERATIONS)
        assert to_client["subject"] == (
            f"Daily exception summary for Demo Shop Ltd: {human_date(period)}"
        )

    monday = last_nominal(7, monday=True)
    await backfill(env, "weekly", monday)
    [weekly] = await runs_when(http, "weekly", 1)
    week_before = monday.astimezone(LONDON).date() - dt.timedelta(days=7)
    year, week, _ = week_before.isocalendar()
    assert (weekly["period"], weekly["outcome"]) == (f"{year}-W{week:02d}", "sent")

    await backfill(env, "daily", nominals[-1])  # the latest nominal time again
    again = await runs_when(http, "daily", 4)
    # the repeated nominal time reuses its run's id: that run now answers "already sent"
    assert {r["period"]: r["outcome"] for r in again} == {
        periods[0]: "sent",
        periods[1]: "sent",
        periods[2]: "already_sent",
    }
    assert len(await messages(http, f"report-daily-demo-shop-{periods[-1]}")) == 2
