"""`GET /metrics` (viewer key): the API's Prometheus metrics in the text exposition format.

It takes an API key like every read: the gauges tell case and message volumes per type and
backend, which are business figures, and the scrape runs SQL. Give Prometheus a viewer key
(`authorization: {type: Bearer, credentials_file: ...}` in the scrape config). What each
metric is, and which are gauges read at scrape time, is in `api.metrics`."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from api.deps import Now, ViewerKey
from api.metrics import HttpMetrics, Snapshot, index_families, scrape_status
from core.db import SessionFactory

router = APIRouter(tags=["metrics"])
log = logging.getLogger("casedesk.api")

INDEX_BUDGET_SECONDS = 5.0
"""How long a scrape waits for the database; past it the index gauges are left out."""


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Text format 0.0.4."}},
)
async def metrics(request: Request, _: ViewerKey, now: Now) -> Response:
    """HTTP request counts and latencies by route template, method and status; cases,
    messages and SQL-detectable stuck cases as gauges read at scrape time (README
    "Observability")."""
    http: HttpMetrics = request.app.state.http_metrics
    sessions: SessionFactory = request.app.state.sessions
    try:
        async with asyncio.timeout(INDEX_BUDGET_SECONDS), sessions() as session:
            families = await index_families(session, now)
        families.append(scrape_status(True))
    except Exception as err:  # the HTTP metrics are still worth a scrape without the database
        log.warning("metrics: the case index did not answer: %s", type(err).__name__)
        families = [scrape_status(False)]
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(Snapshot(families))
    # The classic text format (0.0.4): every name here is a legacy one, and every Prometheus
    # (2.x too) reads it.
    body = generate_latest(http.registry) + generate_latest(scrape)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
