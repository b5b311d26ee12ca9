"""Traces and the worker's Temporal SDK metrics, built once per process from the settings.

Tracing is off unless `CASEDESK_OTEL_ENDPOINT` is set: then the API and the worker each build
a `TracerProvider` exporting over OTLP/HTTP, the API instruments FastAPI with it, and both
Temporal clients carry `TracingInterceptor` (the worker inherits it from its client), so one
trace runs from the HTTP request through StartWorkflow, RunWorkflow and RunActivity. The
provider is passed explicitly rather than installed globally, so tests (and two apps in one
process) each keep their own.

The worker's SDK metrics (`temporal_*`: task latencies, schedule-to-start, activity failures,
slots) are served by the SDK's own Prometheus endpoint on `CASEDESK_WORKER_METRICS_ADDRESS`;
the worker's client must be connected with that `Runtime` for its metrics to be recorded."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from core.settings import Settings

TRACER_NAME = "casedesk"
CORE_LOGGER = "temporalio.core"
KEPT_EXCEPTION_FIELDS = frozenset({"exception.type", "exception.escaped"})


def tracer_provider(settings: Settings, service: str) -> TracerProvider | None:
    """A provider exporting to the configured OTLP/HTTP endpoint, or None when tracing is off.
    `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` still apply (the SDK reads them)."""
    if not settings.otel_endpoint:
        return None
    # Imported here: the exporter (and its HTTP stack) is only needed when tracing is on.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = WithoutFailureText(OTLPSpanExporter(endpoint=settings.otel_endpoint))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class WithoutFailureText(SpanExporter):
    """Exports spans without the text of their failures: an exception event keeps its type,
    not its message or stack trace, and an error status keeps no description. Failures may
    quote what a case holds (the payload codec encrypts them in Temporal's history for that
    reason), and a trace store is read by more people than the codec's keys."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([without_failure_text(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def without_failure_text(span: ReadableSpan) -> ReadableSpan:
    events = [
        Event(
            event.name,
            {k: v for k, v in (event.attributes or {}).items() if k in KEPT_EXCEPTION_FIELDS},
            event.timestamp,
        )
        if event.name == "exception"
        else event
        for event in span.events
    ]
    status = Status(span.status.status_code) if span.status.description else span.status
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def tracing_interceptors(provider: TracerProvider | None) -> Sequence[Interceptor]:
    """The Temporal client's interceptors: tracing when a provider is given, else none."""
    if provider is None:
        return ()
    return (TracingInterceptor(provider.get_tracer(TRACER_NAME)),)


def worker_runtime(settings: Settings) -> Runtime | None:
    """The worker's runtime: the SDK's metrics for Prometheus, durations in seconds (when an
    address is configured), and Core's own log lines (JSON logs, below)."""
    return temporal_runtime(settings, serve_metrics=True)


_TASK_SECONDS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]
LATENCY_BUCKETS = {
    name: _TASK_SECONDS
    for name in (
        "workflow_task_execution_latency",
        "workflow_task_schedule_to_start_latency",
        "workflow_task_replay_latency",
        "activity_execution_latency",
    )
}
"""The SDK's workflow-task histograms stop at 1 s by default: these go on to 60 s, so an
alert on "a workflow task over 2 s" (README) and `bench.burst` can tell 2 s from 10 s."""


def temporal_runtime(settings: Settings, *, serve_metrics: bool) -> Runtime | None:
    """A Temporal runtime for what the settings ask of it, or None (the SDK's default runtime)
    when they ask nothing. With JSON logs, the lines the SDK's Core (Rust) writes itself
    (worker warnings, connection trouble) are forwarded to the `temporalio.core` logger, so
    they come out as JSON too instead of Core's own console format."""
    address = settings.worker_metrics_address if serve_metrics else None
    json_logs = settings.log_format == "json"
    if not address and not json_logs:
        return None
    metrics = (
        PrometheusConfig(
            bind_address=address,
            durations_as_seconds=True,
            histogram_bucket_overrides=LATENCY_BUCKETS,
        )
        if address
        else None
    )
    logging_config = (
        LoggingConfig(
            filter=LoggingConfig.default.filter,
            forwarding=LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER)),
        )
        if json_logs
        else LoggingConfig.default
    )
    return Runtime(telemetry=TelemetryConfig(logging=logging_config, metrics=metrics))


# Modules the sandbox would otherwise import again for every workflow run, each copy kept as
# long as the run is cached (`make bench` measures the heap per cached case):
# - the base classes the case workflows share. They are workflow code: the modules that define
#   the workflows are still re-imported into each run's sandbox, and the replay tests
#   (tests/workflows/test_replay.py) run every committed history in the default sandbox, which
#   re-imports these too and so still catches a non-deterministic call in them;
# - email_validator and idna, which pydantic imports on a run's first email validation.
SHARED_WORKFLOW_MODULES = ("workflows.case", "workflows.driver_documents")
PASSTHROUGH_MODULES = ("opentelemetry", "email_validator", "idna", *SHARED_WORKFLOW_MODULES)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The default sandbox with the modules above passed through. OpenTelemetry must be: the
    tracing interceptor runs inside workflows, and a module re-imported per workflow run
    would break its context."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )
