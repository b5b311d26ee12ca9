"""Exported spans keep a failure's type, never its text (`core.telemetry.WithoutFailureText`):
failures may quote what a case holds."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from core.telemetry import WithoutFailureText


def test_an_exported_failure_keeps_its_type_and_loses_its_text():
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(WithoutFailureText(memory)))
    tracer = provider.get_tracer("test")

    with pytest.raises(ValueError), tracer.start_as_current_span("RunActivity:send_message"):
        raise ValueError("cannot send to ada@example.com")
    with tracer.start_as_current_span("RunActivity:record_case") as fine:
        fine.add_event("checkpoint", {"step": "one"})

    failed, succeeded = memory.get_finished_spans()
    assert failed.status.status_code == StatusCode.ERROR
    assert not failed.status.description
    (event,) = failed.events
    assert event.name == "exception"
    assert event.attributes is not None and event.attributes["exception.type"] == "ValueError"
    assert set(event.attributes) <= {"exception.type", "exception.escaped"}
    assert "ada@example.com" not in failed.to_json()
    assert failed.name == "RunActivity:send_message"
    assert [e.attributes for e in succeeded.events] == [{"step": "one"}]
