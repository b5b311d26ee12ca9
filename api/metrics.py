"""Prometheus metrics of the API (`GET /metrics`, `api.routes.metrics`).

Two kinds, said plainly in each metric's help:
- **Counters and a histogram of the HTTP requests** this process has answered, by route
  *template* (`/cases/{case_id}`, never the raw path: no case ids or tokens become labels),
  method and status. Requests no route matches count under `route="unmatched"`. They live
  in a registry per app (a process-wide one would collide across apps in tests) and restart
  at zero with the process, as Prometheus counters do.
- **Gauges read from the SQL case index and the outbox at scrape time**: cases opened (every
  indexed case), closed, escalated and overdue by case type; messages by backend and status;
  and the stuck radar's two reasons that are one cheap SQL aggregate each (`deadline_passed`,
  `escalated_unassigned`). The radar's other reasons need the timeline per case or a describe
  call per workflow, too much for every scrape: `GET /cases/stuck` has them all. Labels are
  case types, backends, statuses and reasons: a fixed, small set.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, func
from sqlalchemy import case as when
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import CASE_ID
from schemas.enums import CaseStatus, CaseType, MessageStatus
from schemas.stuck import StuckKind
from schemas.tables import Case
from schemas.tables import Message as OutboxMessage

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
SQL_STUCK_REASONS = (StuckKind.DEADLINE_PASSED, StuckKind.ESCALATED_UNASSIGNED)


class HttpMetrics:
    """The request counter and latency histogram of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("route", "method", "status")
        self.requests = Counter(
            "casedesk_http_requests",
            "HTTP requests answered by this API process, by route template, method, status.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "casedesk_http_request_duration_seconds",
            "Time from a request's arrival to its response's end, by route template, method "
            "and status.",
            labels,
            registry=self.registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method if method in METHODS else "other", str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)


def route_template(scope: Scope) -> str:
    """The template of the route that served (or would serve) the request."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # Answered before routing (a refused URL, an idempotent replay): match it ourselves.
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = candidate.matches(scope)
        if match == Match.FULL and isinstance(getattr(candidate, "path", None), str):
            return str(candidate.path)
    return UNMATCHED


class RequestMetrics:
    """Pure ASGI middleware: times every HTTP request and counts it once it is answered (a
    request that raises counts as 500). It also scopes `core.logs.CASE_ID` to the request."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        token = CASE_ID.set(None)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            CASE_ID.reset(token)
            self.metrics.observe(
                route_template(scope), scope["method"], status, time.perf_counter() - started
            )


class Snapshot(Collector):
    """Metric families computed once, handed to a registry for one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(when((condition, 1), else_=0)), 0)


async def index_families(session: AsyncSession, now: datetime) -> list[Metric]:
    """The case index's and the outbox's gauges, from two GROUP BY queries."""
    terminal = [s for s in CaseStatus if s.is_terminal]
    is_open = col(Case.status).not_in(terminal)
    overdue = is_open & col(Case.deadline_at).is_not(None) & (col(Case.deadline_at) < now)
    escalated = is_open & col(Case.escalated)
    # sqlmodel types select() up to 4 columns; this one has 6.
    statement = select(  # type: ignore[call-overload]
        col(Case.type),
        func.count(),
        _count(col(Case.status).in_(terminal)),
        _count(escalated),
        _count(overdue),
        _count(escalated & col(Case.assignee).is_(None)),
    ).group_by(col(Case.type))
    zero = (0, 0, 0, 0, 0)
    per_type: dict[CaseType, tuple[int, ...]] = dict.fromkeys(CaseType, zero)
    for case_type, *counts in (await session.exec(statement)).all():
        per_type[CaseType(case_type)] = tuple(int(n) for n in counts)

    def by_type(name: str, doc: str, index: int) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=["type"])
        for case_type, counts in per_type.items():
            family.add_metric([case_type.value], counts[index])
        return family

    stuck = GaugeMetricFamily(
        "casedesk_stuck_cases",
        "Open cases the stuck radar lists for a reason, by reason and case type; only the "
        "reasons one SQL aggregate finds (deadline_passed, escalated_unassigned). Gauge, read "
        "from the case index at scrape time.",
        labels=["reason", "type"],
    )
    for case_type, counts in per_type.items():
        stuck.add_metric([StuckKind.DEADLINE_PASSED.value, case_type.value], counts[3])
        stuck.add_metric([StuckKind.ESCALATED_UNASSIGNED.value, case_type.value], counts[4])

    messages = GaugeMetricFamily(
        "casedesk_messages",
        "Messages in the outbox by email backend and status (pending, sent, failed). Gauge, "
        "read from the messages table at scrape time.",
        labels=["backend", "status"],
    )
    rows = (
        await session.exec(
            select(col(OutboxMessage.backend), col(OutboxMessage.status), func.count()).group_by(
                col(OutboxMessage.backend), col(OutboxMessage.status)
            )
        )
    ).all()
    per_backend: dict[str, dict[MessageStatus, int]] = {}
    for backend, status, count in rows:
        counts_by_status = per_backend.setdefault(backend, dict.fromkeys(MessageStatus, 0))
        counts_by_status[MessageStatus(status)] = int(count)
    for backend, counts_by_status in sorted(per_backend.items()):
        for status, count in counts_by_status.items():
            messages.add_metric([backend, status.value], count)

    return [
        by_type(
            "casedesk_cases_opened",
            "Cases in the case index (every case opened), by case type. Gauge, read from the "
            "case index at scrape time.",
            0,
        ),
        by_type(
            "casedesk_cases_closed",
            "Cases closed or cancelled, by case type. Gauge, read from the case index at "
            "scrape time.",
            1,
        ),
        by_type(
            "casedesk_cases_escalated",
            "Open cases that are escalated, by case type. Gauge, read from the case index at "
            "scrape time.",
            2,
        ),
        by_type(
            "casedesk_cases_overdue",
            "Open cases past their deadline, by case type. Gauge, read from the case index at "
            "scrape time.",
            3,
        ),
        stuck,
        messages,
    ]


def scrape_status(ok: bool) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "casedesk_metrics_index_up",
        "1 when this scrape read the case index and the outbox, 0 when the database did not "
        "answer (the index gauges are then missing from the scrape).",
    )
    family.add_metric([], 1 if ok else 0)
    return family
