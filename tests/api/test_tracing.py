"""Tracing: one request that opens a case is one trace, from the API's server span through
StartWorkflow and RunWorkflow to the activities the workflow runs (`core.telemetry`).

The app, its Temporal client and the worker are the suite's own (time-skipping server, real
worker), built with a tracer provider that keeps its spans in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.deps import now
from api.main import create_app
from core.db import SessionFactory
from core.settings import Settings
from core.telemetry import tracing_interceptors
from tests.api.conftest import Api
from tests.conftest import TEST_CODEC_KEYS_SETTING
from worker import build_worker


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(spans: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider


@pytest.fixture
def traced_client(time_env: WorkflowEnvironment, provider: TracerProvider) -> Client:
    """The test server's client (its time-skipping interceptor kept) with tracing added."""
    config = time_env.client.config()
    config["interceptors"] = [*config["interceptors"], *tracing_interceptors(provider)]
    return Client(**config)


@pytest.fixture
def app(
    settings: Settings,
    time_env: WorkflowEnvironment,
    traced_client: Client,
    provider: TracerProvider,
    engine: AsyncEngine,
    reference_data: None,
    keys: dict[str, str],
) -> FastAPI:
    app = create_app(settings, temporal=traced_client, engine=engine, tracing=provider)

    async def test_server_clock() -> datetime:
        return await time_env.get_current_time()

    app.dependency_overrides[now] = test_server_clock
    return app


@pytest.fixture
async def worker(
    traced_client: Client, settings: Settings, sessions: SessionFactory
) -> AsyncIterator[Worker]:
    async with build_worker(traced_client, settings, sessions) as running:
        yield running


def named(spans: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


async def test_opening_a_case_is_one_trace_from_the_request_to_the_activities(
    api: Api, spans: InMemorySpanExporter
):
    opened = await api.open_case()
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    await api.customer_link(case_id)  # send_message has stored the customer's notice
    for _ in range(100):  # its span ends once the activity has returned
        finished = list(spans.get_finished_spans())
        if named(finished, "RunActivity:send_message"):
            break
        await asyncio.sleep(0.05)
    (request,) = [
        span
        for span in finished
        if span.kind == SpanKind.SERVER and span.name == "POST /cases/failed-deliveries"
    ]
    trace_id = request.context.trace_id
    in_trace = [span for span in finished if span.context.trace_id == trace_id]
    assert named(in_trace, "StartWorkflow:FailedDeliveryWorkflow")
    assert named(in_trace, "RunWorkflow:FailedDeliveryWorkflow")
    activities = {span.name for span in named(in_trace, "RunActivity:")}
    assert {"RunActivity:record_case", "RunActivity:send_message"} <= activities
    start = named(in_trace, "StartWorkflow:")[0]
    assert start.parent is not None and start.parent.trace_id == trace_id
    assert start.attributes is not None and start.attributes["temporalWorkflowID"] == case_id


async def test_server_spans_carry_no_query_string_and_no_link_token(
    api: Api, spans: InMemorySpanExporter
):
    await api.get("/cases", params={"q": "Ada Customer"})
    await api.get("/r/some.secret-token", role=None)

    for span in spans.get_finished_spans():
        if span.kind != SpanKind.SERVER:
            continue
        for key, value in (span.attributes or {}).items():
            assert "Ada" not in str(value), (key, value)
            assert "some.secret-token" not in str(value), (key, value)


async def test_with_an_otel_endpoint_the_apps_own_temporal_client_is_traced(tmp_path: Path):
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path,
        codec_keys=TEST_CODEC_KEYS_SETTING,
        temporal_address="127.0.0.1:1",  # lazy: never dialled here
        otel_endpoint="http://127.0.0.1:1/v1/traces",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        interceptors = app.state.temporal.config()["interceptors"]
        assert any(isinstance(each, TracingInterceptor) for each in interceptors)
