"""The Temporal UI views: their URLs carry the query encoded (and decode back to it), a
quote in a value cannot end its literal, the console's case list links them, and a real
Temporal server runs every query and finds the cases it should."""

from __future__ import annotations

import asyncio
import html
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from api.temporal_views import escalated_query, list_url, temporal_views, waiting_query
from core.settings import Settings
from core.temporal import (
    CASE_STATUS,
    CASE_TYPE,
    CLIENT_ID,
    DEADLINE_AT,
    DEPOT_ID,
    ESCALATED,
    SEARCH_ATTRIBUTES,
)
from schemas.enums import CaseType
from tests.api import conftest
from tests.api.conftest import OTHER_DRIVER_ID, Api
from tests.api.test_console import NewBrowser, browser  # noqa: F401  (fixture)
from tests.conftest import TEST_CONVERTER, _bin

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
SETTINGS = Settings(temporal_ui_url="http://ui.example:8233/", temporal_namespace="default")


def query_of(url: str) -> str:
    (query,) = parse_qs(urlsplit(url).query, strict_parsing=True)["query"]
    return query


def test_a_view_url_opens_the_namespaces_workflow_list_with_the_query_encoded():
    query = escalated_query(CaseType.DAMAGE_CLAIM, "demo-shop")

    url = list_url(SETTINGS, query)

    assert url.startswith("http://ui.example:8233/namespaces/default/workflows?query=")
    assert " " not in url and "'" not in url and "=" not in url.partition("?query=")[2]
    assert "CaseType%20%3D%20%27damage_claim%27%20AND" in url
    assert query_of(url) == query


def test_a_quote_or_ampersand_in_a_client_id_stays_inside_its_literal():
    query = escalated_query(None, "o'brien&x=1")

    assert query.startswith("ClientId = 'o''brien&x=1' AND ")
    assert query_of(list_url(SETTINGS, query)) == query


def test_waiting_cases_of_a_type_are_its_open_statuses_but_open():
    assert waiting_query(CaseType.UNPAID_INVOICE) == (
        "CaseType = 'unpaid_invoice' AND CaseStatus IN "
        "('awaiting_payment', 'disputed', 'payment_promised')"
    )


def test_the_views_follow_the_console_filters():
    views = temporal_views(
        SETTINGS, NOW, client_id="demo-shop", case_type=CaseType.FAILED_DELIVERY, depot_ids=("d1",)
    )

    assert [v.title for v in views] == [
        "Overdue open cases (deadline before now)",
        "Escalated open cases",
        "Escalated damage claims of demo-shop",
        "Waiting failed delivery cases",
        "Open cases of depot d1",
    ]
    assert "DeadlineAt < '2026-12-03T14:00:00Z'" in views[0].query
    assert all(query_of(v.url) == v.query for v in views)


async def test_the_console_case_list_links_every_view(
    browser: NewBrowser,  # noqa: F811
    settings: Settings,
):
    me = await browser("viewer")

    page = await me.page("/console?client_id=demo-shop")

    assert page.status_code == 200
    body = html.unescape(page.text)
    assert "Temporal views" in body
    claims = escalated_query(CaseType.DAMAGE_CLAIM, "demo-shop")
    assert f'href="{list_url(settings, claims)}"' in body
    assert "Open cases of depot " in body


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


async def test_a_temporal_server_runs_every_view_and_finds_its_cases(dev_env: WorkflowEnvironment):
    """Cases no worker runs (they stay as started, attributes and all): each view's query
    is accepted by the server and lists exactly the cases it describes."""
    client, queue, now = dev_env.client, f"tq-{uuid.uuid4()}", datetime.now(UTC)

    async def case(
        case_id: str, case_type: str, status: str, due_in_h: float = 24, **attrs: object
    ) -> str:
        pairs: list[SearchAttributePair[Any]] = [
            SearchAttributePair(CASE_TYPE, case_type),
            SearchAttributePair(CASE_STATUS, status),
            SearchAttributePair(ESCALATED, bool(attrs.get("escalated", False))),
            SearchAttributePair(CLIENT_ID, str(attrs.get("client", "demo-shop"))),
            SearchAttributePair(DEPOT_ID, str(attrs.get("depot", "depot-north"))),
            SearchAttributePair(DEADLINE_AT, now + timedelta(hours=float(str(due_in_h)))),
        ]
        await client.start_workflow(
            "Nobody", id=case_id, task_queue=queue, search_attributes=TypedSearchAttributes(pairs)
        )
        return case_id

    late = await case("fd-late", "failed_delivery", "waiting_on_customer", due_in_h=-2)
    claim = await case("dc-esc", "damage_claim", "gathering_evidence", escalated=True)
    other = await case("dc-other", "damage_claim", "gathering_evidence", escalated=True, client="x")
    south = await case("od-south", "driver_onboarding", "collecting_documents", depot="south")
    closed = await case("fd-closed", "failed_delivery", "closed", due_in_h=-5, escalated=True)
    views = {
        v.title: v
        for v in temporal_views(SETTINGS, now, client_id="demo-shop", depot_ids=("south",))
    }
    expected = {
        "Overdue open cases (deadline before now)": {late},
        "Escalated open cases": {claim, other},
        "Escalated damage claims of demo-shop": {claim},
        "Waiting failed delivery cases": {late},
        "Waiting damage claim cases": {claim, other},
        "Open cases of depot south": {south},
    }
    assert closed not in set().union(*expected.values())

    for title, ids in expected.items():
        found: set[str] = set()
        for _ in range(100):  # visibility is eventually consistent
            found = {w.id async for w in client.list_workflows(views[title].query)}
            if found == ids:
                break
            await asyncio.sleep(0.1)
        assert found == ids, (title, views[title].query)


async def test_a_case_opened_over_the_api_speaks_its_depots_time_zone(
    api: Api, time_env: WorkflowEnvironment
):
    opened = await api.open_case(driver_id=OTHER_DRIVER_ID)  # a New York depot's driver
    assert opened.status_code == 201, opened.text
    case = await api.wait_for(opened.json()["case_id"], "waiting_on_customer")
    handle = time_env.client.get_workflow_handle(case["case_id"])
    described = await handle.describe()
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    next_at = datetime.fromisoformat(case["next_step_at"]).astimezone(ZoneInfo("America/New_York"))

    assert await described.static_summary() == (
        f"Failed delivery · shipment {case['business_key']} · {conftest.CLIENT_ID}"
    )
    assert "depot `nyc-1`; times in America/New_York" in str(await described.static_details())
    assert f"{next_at:%H:%M} {next_at.tzname()}" in metadata.current_details
    assert next_at.tzname() in ("EST", "EDT")
