"""Every API call has a bound: Temporal unreachable is a 503 within 3 s, an update not
confirmed within its limit a 504 at that limit, and a case Temporal and the index already
know is answered without a worker.

The time assertions are generous upper bounds on the promises (3 s, the update limit), as
the house rules allow for these alone; a run without the bounds takes 30 s per call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from api.deps import Timeouts
from api.main import create_app
from core.temporal import connect
from schemas.enums import CaseStatus, CaseType
from schemas.tables import Case, IdempotencyKey
from tests.api.conftest import Api, assert_problem, failed_delivery
from tests.api.locks import writes_blocked
from tests.conftest import TEST_CONVERTER, _bin, register_search_attributes
from worker import build_worker

PROMISE = 3.0
SLACK = 3.0  # scheduling on a shared 2-core machine; the unbounded calls take 30 s


@pytest.fixture
async def unreachable(settings, engine, blackhole, keys, reference_data) -> AsyncIterator[Api]:
    app = create_app(
        settings,
        temporal=await connect(
            settings.model_copy(update={"temporal_address": blackhole}), lazy=True
        ),
        engine=engine,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Api(raw=client, keys=keys)


async def _timed(call) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await asyncio.wait_for(call, 60)
    return response, time.monotonic() - started


async def test_opening_a_case_with_temporal_unreachable_is_503_within_3_s(unreachable: Api):
    response, took = await _timed(unreachable.open_case())

    assert_problem(response, 503)
    assert took < PROMISE + SLACK, took


async def test_reading_a_case_with_temporal_unreachable_is_503_within_3_s(unreachable: Api):
    response, took = await _timed(unreachable.get("/cases/failed-delivery-S-unknown"))

    assert_problem(response, 503)
    assert took < PROMISE + SLACK, took


async def test_an_action_with_temporal_unreachable_is_503_within_3_s(unreachable: Api, sessions):
    async with sessions() as session:  # a case the index knows
        session.add(
            Case(
                id="failed-delivery-S-indexed",
                type=CaseType.FAILED_DELIVERY,
                status=CaseStatus.WAITING_ON_CUSTOMER,
                business_key="S-indexed",
                subject="Shipment S-indexed: attempt 1 failed (not_home)",
                opened_at=datetime.now(UTC),
            )
        )
        await session.commit()
    note = unreachable.post("/cases/failed-delivery-S-indexed/notes", json={"text": "hi"})

    response, took = await _timed(note)

    assert_problem(response, 503)
    assert took < PROMISE + SLACK, took


@pytest.fixture
async def dev_api(settings, engine, sessions, keys, reference_data) -> AsyncIterator[Api]:
    """The API and a worker on a real dev server: unlike the time-skipping test server, it
    answers a waiting update at its accepted stage once its long poll expires, and the SDK
    then polls for the outcome, one bounded poll after another, without end."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_bin("temporal"),
        data_converter=TEST_CONVERTER,
        # Long polls end after 1 s instead of 20 s, so that the unbounded polling shows
        # within a short update limit (the real server's shape, on a smaller scale).
        dev_server_extra_args=[
            "--dynamic-config-value",
            'frontend.longPollExpirationInterval="1s"',
            "--dynamic-config-value",
            'history.longPollExpirationInterval="1s"',
        ],
    )
    async with env:
        await register_search_attributes(env.client)
        app = create_app(settings, temporal=env.client, engine=engine)
        transport = httpx.ASGITransport(app=app)
        async with (
            build_worker(env.client, settings, sessions),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        ):
            yield Api(raw=client, keys=keys)


async def test_an_update_not_confirmed_within_its_limit_is_504_at_the_limit(
    dev_api: Api, database_url: str
):
    api = dev_api
    case_id = (await api.open_case()).json()["case_id"]
    await api.wait_for(case_id, "waiting_on_customer")
    limit = timedelta(seconds=3)
    app = api.raw._transport.app  # type: ignore[attr-defined]
    app.state.timeouts = Timeouts(query=timedelta(seconds=3), update=limit, health=limit)

    async with writes_blocked(database_url):  # the note is accepted; its record waits
        response, took = await _timed(api.post(f"/cases/{case_id}/notes", json={"text": "hi"}))

    problem = assert_problem(response, 504)
    assert "may still be applied" in problem["detail"]
    assert limit.total_seconds() <= took < limit.total_seconds() + SLACK, took


async def test_a_repeated_open_while_no_worker_runs_answers_what_temporal_knows(
    raw_client: httpx.AsyncClient, keys: dict[str, str]
):
    api = Api(raw=raw_client, keys=keys)  # no worker fixture: nobody runs the case
    body = failed_delivery()
    first = await api.post("/cases/failed-deliveries", json=body)
    assert first.status_code == 201, first.text

    again = await api.post("/cases/failed-deliveries", json=body)
    read = await api.get(f"/cases/{first.json()['case_id']}")

    for response in (again, read):
        assert response.status_code == 200, response.text
        detail = response.json()
        assert detail["live"] is False and detail["status"] == "open"
        assert detail["case_id"] == first.json()["case_id"]
        assert detail["subject"] == first.json()["subject"]
        assert detail["client_id"] == body["client_id"]


async def test_a_503_is_not_kept_for_its_idempotency_key(unreachable: Api, sessions):
    headers = {**unreachable._auth("ops"), "Idempotency-Key": "open-1"}

    response = await unreachable.raw.post(
        "/cases/failed-deliveries", json=failed_delivery(), headers=headers
    )

    assert_problem(response, 503)
    async with sessions() as session:
        kept = (await session.exec(select(IdempotencyKey))).one()
    assert kept.status_code is None and kept.claimed_at is None  # free to be sent again
