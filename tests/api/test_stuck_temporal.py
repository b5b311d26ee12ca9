"""The stuck-case radar's Temporal part: an activity that keeps failing and a workflow task
that raises, each made to happen on a real dev server (the time-skipping test server does
not report pending workflow tasks), listed with its last failure and unlisted once fixed; and
a Temporal that does not answer, which leaves the SQL reasons listed and `live` false."""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.email_backends import EmailBackendUnavailable, OutgoingEmail
from activities.messaging import MessagingActivities
from api.main import create_app
from core.db import SessionFactory
from core.settings import Settings
from core.temporal import SEARCH_ATTRIBUTES, connect
from schemas.enums import CaseStatus, CaseType
from schemas.tables import Case
from tests.api.conftest import Api
from tests.conftest import TEST_CONVERTER, _bin
from worker import WORKFLOWS, build_activities

PATIENCE = 60.0  # seconds: real retries on a real server (attempt 3 of an email is at ~6 s)


class FlakyEmail:
    """An email provider that is down until the test brings it back."""

    name = "outbox"

    def __init__(self) -> None:
        self.down = True

    async def send(self, email: OutgoingEmail) -> str:
        if self.down:
            raise EmailBackendUnavailable("the provider is down (radar test)")
        return f"outbox-{email.message_id}"


@workflow.defn(name="RadarProbe", sandboxed=False)
class BrokenProbe:
    """A case's workflow with a bug: every workflow task raises."""

    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("probe bug: the workflow code raises")


@workflow.defn(name="RadarProbe", sandboxed=False)
class FixedProbe:
    """The same workflow with the bug fixed: it waits to be told to finish."""

    def __init__(self) -> None:
        self._done = False

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._done)


@pytest.fixture
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_bin("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
    )
    async with env:
        yield env


async def _api(app: Any, keys: dict[str, str]) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Api(raw=client, keys=keys)


@pytest.fixture
async def dev_api(
    dev_env: WorkflowEnvironment, settings: Settings, engine, keys, reference_data
) -> AsyncIterator[Api]:
    """The API on the dev server; each test runs the workers it needs."""
    async for api in _api(create_app(settings, temporal=dev_env.client, engine=engine), keys):
        yield api


def _worker(
    client: Client,
    settings: Settings,
    sessions: SessionFactory,
    *,
    email: FlakyEmail | None = None,
    workflows: Sequence[type] = WORKFLOWS,
) -> Worker:
    activities = build_activities(settings, sessions, client)
    if email is not None:
        messaging = MessagingActivities.from_settings(settings, sessions=sessions, backend=email)
        activities = [
            messaging.send_message if getattr(a, "__name__", "") == "send_message" else a
            for a in activities
        ]
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=list(workflows),
        activities=activities,
    )


def _reason(body: dict[str, Any], case_id: str, kind: str) -> dict[str, Any] | None:
    for item in body["items"]:
        if item["case_id"] == case_id:
            return next((r for r in item["reasons"] if r["kind"] == kind), None)
    return None


async def _radar_until(
    api: Api, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """Poll the radar until `check` passes (real retries take seconds, not milliseconds)."""
    deadline, body = time.monotonic() + PATIENCE, {}
    while time.monotonic() < deadline:
        response = await api.get("/cases/stuck")
        body = response.json()
        if response.status_code == 200 and check(body):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"the radar never {what}: {body}")


async def test_an_activity_that_keeps_failing_is_listed_until_it_succeeds(
    dev_api: Api, dev_env: WorkflowEnvironment, settings: Settings, sessions: SessionFactory
):
    email = FlakyEmail()
    async with _worker(dev_env.client, settings, sessions, email=email):
        opened = await dev_api.open_case()
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["case_id"]

        body = await _radar_until(
            dev_api,
            lambda b: _reason(b, case_id, "activity_retrying") is not None,
            "listed the failing email",
        )
        reason = _reason(body, case_id, "activity_retrying")
        assert reason is not None
        assert reason["activity_type"] == "send_message" and reason["attempt"] >= 3
        assert "the provider is down (radar test)" in reason["last_failure"]
        assert "send_message is on attempt" in reason["reason"]
        assert datetime.fromisoformat(reason["since"]) <= datetime.now(UTC)
        assert body["live"] is True and body["unchecked"] == 0

        email.down = False
        await _radar_until(
            dev_api,
            lambda b: _reason(b, case_id, "activity_retrying") is None,
            "unlisted the email once sent",
        )
        messages = (await dev_api.get(f"/cases/{case_id}")).json()["messages"]
        assert any(m["status"] == "sent" for m in messages)


async def test_a_workflow_task_that_raises_is_listed_until_the_fix_is_deployed(
    dev_api: Api, dev_env: WorkflowEnvironment, settings: Settings, sessions: SessionFactory
):
    case_id = f"failed-delivery-S-{uuid.uuid4().hex[:10]}"
    async with sessions() as session:  # its index row, as any case has
        session.add(
            Case(
                id=case_id,
                type=CaseType.FAILED_DELIVERY,
                status=CaseStatus.WAITING_ON_CUSTOMER,
                business_key=case_id.removeprefix("failed-delivery-"),
                subject="Radar probe",
                opened_at=datetime.now(UTC),
            )
        )
        await session.commit()
    queue = settings.temporal_task_queue
    started_at = datetime.now(UTC)
    async with _worker(dev_env.client, settings, sessions, workflows=[BrokenProbe]):
        handle = await dev_env.client.start_workflow(
            "RadarProbe", id=case_id, task_queue=queue, task_timeout=timedelta(seconds=3)
        )
        body = await _radar_until(
            dev_api,
            lambda b: _reason(b, case_id, "workflow_task_failing") is not None,
            "listed the failing workflow task",
        )
    reason = _reason(body, case_id, "workflow_task_failing")
    assert reason is not None and reason["attempt"] >= 2
    assert "probe bug: the workflow code raises" in reason["last_failure"]
    assert started_at - timedelta(seconds=1) <= datetime.fromisoformat(reason["since"])

    async with _worker(dev_env.client, settings, sessions, workflows=[FixedProbe]):
        await _radar_until(
            dev_api,
            lambda b: _reason(b, case_id, "workflow_task_failing") is None,
            "unlisted the workflow once fixed",
        )
        await handle.signal("finish")
        await handle.result()


@pytest.fixture
async def unreachable(settings, engine, blackhole, keys, reference_data) -> AsyncIterator[Api]:
    temporal = await connect(settings.model_copy(update={"temporal_address": blackhole}), lazy=True)
    async for api in _api(create_app(settings, temporal=temporal, engine=engine), keys):
        yield api


async def test_with_temporal_unreachable_the_sql_reasons_are_listed_not_live(
    unreachable: Api, sessions: SessionFactory
):
    now = datetime.now(UTC)
    async with sessions() as session:
        session.add(
            Case(
                id="failed-delivery-S-late",
                type=CaseType.FAILED_DELIVERY,
                status=CaseStatus.REDELIVERY_SCHEDULED,
                business_key="S-late",
                subject="Shipment S-late",
                opened_at=now - timedelta(days=2),
                deadline_at=now - timedelta(hours=3),
                escalated=True,
                escalation_reason="No delivery outcome",
                next_step_at=now + timedelta(hours=1),
            )
        )
        await session.commit()

    started = time.monotonic()
    response = await unreachable.get("/cases/stuck")
    took = time.monotonic() - started

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["live"] is False and body["temporal_detail"]
    assert body["checked"] == 0 and body["unchecked"] == 1
    kinds = {r["kind"] for r in body["items"][0]["reasons"]}
    assert kinds == {"deadline_passed", "escalated_unassigned"}
    assert took < 6.0, took  # the health check's bound (2.5 s) and scheduling slack
    sql_only = (await unreachable.get("/cases/stuck", params={"kind": "deadline_passed"})).json()
    assert sql_only["live"] is True and sql_only["total"] == 1  # Temporal not asked


async def test_with_temporal_unreachable_the_console_says_its_part_is_unavailable(
    unreachable: Api, keys: dict[str, str], sessions: SessionFactory
):
    async with sessions() as session:  # an open case nothing is wrong with in SQL
        session.add(
            Case(
                id="failed-delivery-S-calm",
                type=CaseType.FAILED_DELIVERY,
                status=CaseStatus.WAITING_ON_CUSTOMER,
                business_key="S-calm",
                subject="Shipment S-calm",
                opened_at=datetime.now(UTC),
            )
        )
        await session.commit()
    login = await unreachable.raw.post("/console/login", data={"api_key": keys["viewer"]})
    assert login.status_code == 303, login.text

    page = await unreachable.raw.get("/console/stuck")

    assert page.status_code == 200, page.text
    body = html.unescape(page.text)
    assert "Temporal's part is unavailable: Temporal is unreachable" in body
    assert "Nothing is stuck" in body
