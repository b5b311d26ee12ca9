"""The FastAPI application: `uvicorn api.main:create_app --factory`.

`create_app` takes what it can be given (settings, a Temporal client, a database engine) and
the lifespan builds the rest. The Temporal client is connected lazily, so the API starts and
answers `/healthz` (degraded) while Temporal is down; calls that need Temporal answer 503.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.deps import Timeouts
from api.errors import install_error_handlers
from api.routes import (
    api_keys,
    case_types,
    cases,
    clients,
    codec,
    console,
    console_reports,
    customer,
    deliveries,
    depots,
    drivers,
    health,
    invoicing,
    messages,
    rate_agreements,
    reports,
)
from api.routes import documents as document_routes
from api.routes.codec import install_codec_cors
from core.db import make_engine, make_session_factory
from core.documents import DocumentStore, LocalDocumentStore
from core.settings import Settings
from core.temporal import connect
from schemas.case_types import CASE_TYPES

PAGES_DIR = Path(__file__).resolve().parent.parent / "templates" / "pages"

DEFAULT_TIMEOUTS = Timeouts(
    query=timedelta(seconds=3), update=timedelta(seconds=30), health=timedelta(seconds=2)
)


def create_app(
    settings: Settings | None = None,
    *,
    temporal: Client | None = None,
    engine: AsyncEngine | None = None,
    documents: DocumentStore | None = None,
) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned: AsyncEngine | None = None
        if app.state.engine is None:
            owned = make_engine(settings.resolved_database_url)
            _use_engine(app, owned)
        if app.state.temporal is None:
            app.state.temporal = await connect(settings, lazy=True)
        try:
            yield
        finally:
            if owned is not None:  # an injected engine belongs to whoever injected it
                await owned.dispose()

    app = FastAPI(
        title="casedesk",
        summary="Case management for last-mile delivery: every exception is a durable case.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.temporal = temporal
    app.state.engine = None
    app.state.sessions = None
    app.state.timeouts = DEFAULT_TIMEOUTS
    # Claim evidence: the same store the worker's activities use (settings.documents_dir).
    app.state.documents = documents or LocalDocumentStore.from_settings(settings)
    # Autoescaped Jinja2 environment for the customer pages, built once.
    app.state.templates = Jinja2Templates(directory=PAGES_DIR)
    if engine is not None:
        _use_engine(app, engine)

    install_error_handlers(app)
    install_codec_cors(app, settings)
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
        console,
        codec,
    ):
        app.include_router(module.router)
    return app


def _use_engine(app: FastAPI, engine: AsyncEngine) -> None:
    app.state.engine = engine
    app.state.sessions = make_session_factory(engine)
