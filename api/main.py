"""The FastAPI application: `uvicorn api.main:create_app --factory`.

`create_app` takes what it can be given (settings, a Temporal client, a database engine) and
the lifespan builds the rest. The Temporal client is connected lazily, so the API starts and
answers `/healthz` (degraded) while Temporal is down; calls that need Temporal answer 503.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.access_log import install_log_redaction, redact
from api.console import display as console_display
from api.deps import Timeouts
from api.docs_pages import install_docs
from api.errors import CALL_LIMIT, install_error_handlers
from api.guards import RefuseControlCharacters
from api.idempotency import IdempotencyMiddleware, applies_to
from api.metrics import HttpMetrics, RequestMetrics
from api.ratelimit import FailureLimiter
from api.routes import (
    api_keys,
    case_types,
    cases,
    clients,
    codec,
    console,
    console_reports,
    console_stuck,
    customer,
    deliveries,
    depots,
    drivers,
    health,
    invoicing,
    messages,
    metrics,
    rate_agreements,
    reports,
    webhooks,
)
from api.routes import documents as document_routes
from api.routes.codec import install_codec_cors
from core.db import make_engine, make_session_factory
from core.documents import DocumentStore, LocalDocumentStore
from core.logs import configure_logging
from core.settings import Settings
from core.telemetry import temporal_runtime, tracer_provider, tracing_interceptors
from core.temporal import connect
from schemas.case_types import CASE_TYPES

PAGES_DIR = Path(__file__).resolve().parent.parent / "templates" / "pages"

DEFAULT_TIMEOUTS = Timeouts(
    query=CALL_LIMIT, update=timedelta(seconds=30), health=timedelta(seconds=2)
)


def create_app(
    settings: Settings | None = None,
    *,
    temporal: Client | None = None,
    engine: AsyncEngine | None = None,
    documents: DocumentStore | None = None,
    tracing: TracerProvider | None = None,
) -> FastAPI:
    """`tracing`: a provider to trace with (tests pass one with an in-memory exporter);
    by default one is built when `CASEDESK_OTEL_ENDPOINT` is set. An injected Temporal
    client brings its own interceptors (`core.telemetry.tracing_interceptors`)."""
    settings = settings or Settings()
    configure_logging(settings)
    install_log_redaction()
    owned_tracing = None if tracing is not None else tracer_provider(settings, "casedesk-api")
    tracing = tracing or owned_tracing

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Temporal first: a bad connection setting stops the start before anything is open.
        if app.state.temporal is None:
            app.state.temporal = await connect(
                settings,
                lazy=True,
                interceptors=tracing_interceptors(tracing),
                runtime=temporal_runtime(settings, serve_metrics=False),
            )
        owned: AsyncEngine | None = None
        if app.state.engine is None:
            owned = make_engine(settings.resolved_database_url, pool=settings.database_pool)
            _use_engine(app, owned)
        try:
            yield
        finally:
            if owned is not None:  # an injected engine belongs to whoever injected it
                await owned.dispose()
            if owned_tracing is not None:  # flushes the spans still batched
                owned_tracing.shutdown()

    app = FastAPI(
        title="casedesk",
        summary="Case management for last-mile delivery: every exception is a durable case.",
        version="0.1.0",
        lifespan=lifespan,
        # Served by install_docs from the pinned package's copies, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.temporal = temporal
    app.state.engine = None
    app.state.sessions = None
    app.state.timeouts = DEFAULT_TIMEOUTS
    # Wrong API keys and console logins, per client address (api/ratelimit.py).
    app.state.auth_limiter = FailureLimiter(
        limit=settings.auth_failure_limit, window=settings.auth_failure_window_seconds
    )
    # Claim evidence: the same store the worker's activities use (settings.documents_dir).
    app.state.documents = documents or LocalDocumentStore.from_settings(settings)
    # Autoescaped Jinja2 environment for the customer pages, built once.
    app.state.templates = Jinja2Templates(directory=PAGES_DIR)
    console_display.install(app.state.templates.env)
    if engine is not None:
        _use_engine(app, engine)

    install_error_handlers(app)
    install_docs(app)
    install_codec_cors(app, settings)
    app.add_middleware(IdempotencyMiddleware, max_body_bytes=settings.max_upload_bytes)
    app.add_middleware(RefuseControlCharacters)  # before anything reads the URL
    # Outermost: refused URLs and idempotent replays are counted too.
    app.state.http_metrics = HttpMetrics()
    app.add_middleware(RequestMetrics, metrics=app.state.http_metrics)
    app.include_router(health.router)
    app.include_router(case_types.router)
    app.include_router(cases.router)
    app.include_router(document_routes.router)  # every case type with documents
    # Each case type's own endpoints, from the registry (types may share a router: once each).
    for router in dict.fromkeys(spec.router for spec in CASE_TYPES.values()):
        app.include_router(importlib.import_module(router).router)
    for module in (
        messages,
        clients,
        rate_agreements,
        invoicing,
        reports,
        deliveries,
        depots,
        drivers,
        api_keys,
        customer,
        console_reports,
        console_stuck,
        console,
        codec,
        webhooks,
        metrics,
    ):
        app.include_router(module.router)
    _document_idempotency_keys(app)
    if tracing is not None:
        instrument(app, tracing)
    return app


def instrument(app: FastAPI, provider: TracerProvider) -> None:
    """Server spans per request, named by route template. The URL attributes are rewritten
    without the query string and with customers' link tokens redacted (both may hold what
    must not leave: search terms, a bearer link)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    def scrub(span: Any, scope: dict[str, Any]) -> None:
        if not span.is_recording():
            return
        present = getattr(span, "attributes", None) or {}
        path = redact(scope.get("path", ""))
        for name in ("http.target", "url.path", "http.url", "url.full"):
            if name in present:
                span.set_attribute(name, path)
        if "url.query" in present:
            span.set_attribute("url.query", "")

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        server_request_hook=scrub,
        exclude_spans=["receive", "send"],
    )


IDEMPOTENCY_HEADER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any string of 1 to 255 visible ASCII characters, new for each new "
    "request. The same key with the same request within 24 hours replays the first answer "
    "(header `Idempotent-Replayed: true`); with another request it is a 422. An answer of "
    "5xx (a 504 too) is not kept: send the request again with the same key, and the case "
    "applies the action once.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~]+$"},
}


def _document_idempotency_keys(app: FastAPI) -> None:
    """The OpenAPI document lists the header on every POST the middleware serves."""

    built = app.openapi  # FastAPI's own: builds the document once and keeps it

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = built()
        for path, operations in schema.get("paths", {}).items():
            post = operations.get("post")
            if post is not None and applies_to("POST", _example_path(path)):
                post.setdefault("parameters", []).append(IDEMPOTENCY_HEADER)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _example_path(template: str) -> str:
    """`/drivers/{driver_id}/offboard` as a path the middleware would see."""
    return re.sub(r"\{[^}]+\}", "x", template)


def _use_engine(app: FastAPI, engine: AsyncEngine) -> None:
    app.state.engine = engine
    app.state.sessions = make_session_factory(engine)
