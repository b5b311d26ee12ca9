"""The observability settings: all off by default, and refused at start when malformed."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider

from core.settings import Settings
from core.telemetry import temporal_runtime, tracer_provider, tracing_interceptors, worker_runtime


def test_tracing_worker_metrics_and_json_logs_are_off_by_default():
    settings = Settings(_env_file=None)
    assert settings.log_format == "text"
    assert tracer_provider(settings, "casedesk-api") is None
    assert tracing_interceptors(None) == ()
    assert worker_runtime(settings) is None


@pytest.mark.parametrize(
    "address", ["127.0.0.1:9464", "0.0.0.0:9464", "[::]:9464", "10.0.0.7:65535"]
)
def test_the_worker_metrics_address_is_an_ip_and_a_port(address: str):
    assert Settings(_env_file=None, worker_metrics_address=address).worker_metrics_address


@pytest.mark.parametrize(
    "address", ["localhost:9464", "9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":9464"]
)
def test_a_malformed_worker_metrics_address_is_refused(address: str):
    with pytest.raises(ValueError, match="CASEDESK_WORKER_METRICS_ADDRESS"):
        Settings(_env_file=None, worker_metrics_address=address)


def test_an_otel_endpoint_turns_tracing_on():
    settings = Settings(_env_file=None, otel_endpoint="http://collector:4318/v1/traces")
    provider = tracer_provider(settings, "casedesk-worker")
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes["service.name"] == "casedesk-worker"
    (interceptor,) = tracing_interceptors(provider)
    assert type(interceptor).__name__ == "TracingInterceptor"
    provider.shutdown()


@pytest.mark.parametrize("endpoint", ["collector:4318", "ftp://collector/v1/traces", "http://"])
def test_an_otel_endpoint_must_be_an_http_url(endpoint: str):
    with pytest.raises(ValueError, match="otel_endpoint"):
        Settings(_env_file=None, otel_endpoint=endpoint)


def test_the_apis_runtime_never_serves_the_worker_metrics():
    metrics_only = Settings(_env_file=None, worker_metrics_address="127.0.0.1:9464")
    assert temporal_runtime(metrics_only, serve_metrics=False) is None
    # JSON logs need a runtime of their own: Core's lines are forwarded to Python logging.
    json_logs = Settings(_env_file=None, log_format="json")
    assert temporal_runtime(json_logs, serve_metrics=False) is not None
