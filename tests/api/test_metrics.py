"""`GET /metrics`: Prometheus text format, requests labelled by route template (never a case
id or a raw path), and gauges from the case index and the outbox that move with the cases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from core.db import SessionFactory
from schemas.enums import CaseStatus, CaseType
from schemas.tables import Case
from tests.api.conftest import Api

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(api: Api) -> tuple[str, Samples]:
    response = await api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_values(samples: Samples, label: str) -> set[str]:
    return {v for (_, labels) in samples for k, v in labels if k == label}


async def test_metrics_needs_an_api_key(api: Api):
    assert (await api.get("/metrics", role=None)).status_code == 401
    assert (await api.get("/metrics", role="viewer")).status_code == 200


async def test_requests_are_counted_by_route_template_never_by_case_id(api: Api):
    opened = await api.open_case()
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    assert (await api.get(f"/cases/{case_id}")).status_code == 200
    assert (await api.get("/cases/failed-delivery-S-nobody")).status_code == 404
    assert (await api.get("/no/such/page/S-123")).status_code == 404

    text, samples = await scrape(api)

    requests = "casedesk_http_requests_total"
    assert value(samples, requests, route="/cases/failed-deliveries", method="POST", status="201")
    assert value(samples, requests, route="/cases/{case_id}", method="GET", status="200") >= 1
    assert value(samples, requests, route="/cases/{case_id}", method="GET", status="404") == 1
    assert value(samples, requests, route="unmatched", method="GET", status="404") == 1
    latency = "casedesk_http_request_duration_seconds_count"
    assert value(samples, latency, route="/cases/{case_id}", method="GET", status="404") == 1
    routes = label_values(samples, "route")
    assert all(route == "unmatched" or route.startswith("/") for route in routes)
    for raw in (case_id, "S-nobody", "/no/such/page", "S-123"):
        assert raw not in text


async def test_an_unknown_method_is_one_label_value(api: Api):
    await api.raw.request("BREW", "/cases", headers=api._auth("viewer"))
    _, samples = await scrape(api)
    assert "BREW" not in label_values(samples, "method")
    assert "other" in label_values(samples, "method")


async def test_opening_a_case_moves_the_case_and_message_gauges(api: Api):
    _, before = await scrape(api)
    opened = await api.open_case()
    case_id = opened.json()["case_id"]
    await api.customer_link(case_id)  # the customer's notice is in the outbox
    was_sent = value(before, "casedesk_messages", backend="outbox", status="sent")
    for _ in range(100):  # the row is written pending, then marked sent
        _, after = await scrape(api)
        if value(after, "casedesk_messages", backend="outbox", status="sent") > was_sent:
            break
        await asyncio.sleep(0.05)
    kind = CaseType.FAILED_DELIVERY.value
    assert value(after, "casedesk_cases_opened", type=kind) == (
        value(before, "casedesk_cases_opened", type=kind) + 1
    )
    assert value(after, "casedesk_cases_closed", type=kind) == 0
    assert value(after, "casedesk_messages", backend="outbox", status="sent") >= was_sent + 1
    assert value(after, "casedesk_messages", backend="outbox", status="failed") == 0
    # Every case type has its series, zero or not, so a rule never meets a missing one.
    assert {t.value for t in CaseType} <= label_values(after, "type")
    assert value(after, "casedesk_metrics_index_up") == 1


async def test_overdue_escalated_and_stuck_gauges_follow_the_index(
    raw_client: httpx.AsyncClient, keys: dict[str, str], sessions: SessionFactory
):
    now = datetime.now(UTC)

    def case(case_id: str, **fields: Any) -> Case:
        return Case(
            id=case_id,
            type=CaseType.DAMAGE_CLAIM,
            status=fields.pop("status", CaseStatus.GATHERING_EVIDENCE),
            business_key=case_id,
            subject="claim",
            opened_at=now - timedelta(days=5),
            **fields,
        )

    async with sessions() as session:
        session.add_all(
            [
                case("damage-claim-late", deadline_at=now - timedelta(hours=1)),
                case("damage-claim-early", deadline_at=now + timedelta(hours=1)),
                case("damage-claim-esc", escalated=True),
                case("damage-claim-owned", escalated=True, assignee="ops-1"),
                case(
                    "damage-claim-done",
                    status=CaseStatus.CLOSED,
                    escalated=True,
                    deadline_at=now - timedelta(days=1),
                ),
            ]
        )
        await session.commit()

    response = await raw_client.get(
        "/metrics", headers={"Authorization": f"Bearer {keys['viewer']}"}
    )
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    claim = CaseType.DAMAGE_CLAIM.value
    assert value(samples, "casedesk_cases_opened", type=claim) == 5
    assert value(samples, "casedesk_cases_closed", type=claim) == 1
    assert value(samples, "casedesk_cases_overdue", type=claim) == 1  # closed ones are not
    assert value(samples, "casedesk_cases_escalated", type=claim) == 2
    stuck = "casedesk_stuck_cases"
    assert value(samples, stuck, reason="deadline_passed", type=claim) == 1
    assert value(samples, stuck, reason="escalated_unassigned", type=claim) == 1
    assert value(samples, stuck, reason="escalated_unassigned", type="failed_delivery") == 0
