"""`CASEDESK_LOG_FORMAT=json`: one JSON object per line with timestamp, level, logger and
message, and the case's ids on the lines about a case: activity lines (`activity.logger`),
workflow lines (`workflow.logger`) and API lines logged while a case route runs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.access_log import install_log_redaction
from api.deps import CurrentCase, ViewerKey
from core.logs import CASE_ID, configure_logging, json_formatter, use_json
from core.settings import Settings
from core.telemetry import worker_runtime
from core.temporal import connect
from tests.api.conftest import Api
from tests.api.test_worker_metrics import greet


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, as the JSON handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    use_json(handler)
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.INFO)
    yield stream
    root.removeHandler(handler)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_a_line_is_one_json_object_with_the_four_fields(lines: io.StringIO):
    logging.getLogger("casedesk.test").warning("plain %s", "words")
    (line,) = parsed(lines)
    assert line["level"] == "WARNING"
    assert line["logger"] == "casedesk.test"
    assert line["message"] == "plain words"
    assert line["timestamp"].endswith("+00:00")  # ISO 8601, UTC
    assert "case_id" not in line and "workflow_id" not in line


def test_the_access_log_holds_no_search_text_and_no_link_token(lines: io.StringIO):
    install_log_redaction()
    access = logging.getLogger("uvicorn.access")
    # What uvicorn's protocols log for each request (uvicorn/protocols/http/*_impl.py).
    request = ("10.0.0.9:5123", "GET", "/cases?limit=5&q=Ada%20Customer", "1.1", 200)
    access.info('%s - "%s %s HTTP/%s" %d', *request, extra={"color_message": "\x1b[1m"})
    access.info('%s - "%s %s HTTP/%s" %d', "10.0.0.9:5123", "GET", "/r/tok.sig", "1.1", 200)
    first, second = parsed(lines)
    assert first["message"] == '10.0.0.9:5123 - "GET /cases?limit=5&q=…redacted… HTTP/1.1" 200'
    assert "tok.sig" not in second["message"]
    assert "color_message" not in first


def test_an_api_line_names_the_case_of_its_request(lines: io.StringIO):
    token = CASE_ID.set("failed-delivery-S-1")
    try:
        logging.getLogger("casedesk.api").info("inside a case route")
    finally:
        CASE_ID.reset(token)
    (line,) = parsed(lines)
    assert line["case_id"] == "failed-delivery-S-1"


async def test_activity_workflow_and_api_lines_carry_the_case_ids(
    api: Api, app: FastAPI, lines: io.StringIO
):
    probe = logging.getLogger("casedesk.api")

    @app.get("/cases/{case_id}/log-probe", include_in_schema=False)
    async def log_probe(_: ViewerKey, case: CurrentCase) -> dict[str, str]:
        probe.info("probe for a case route")
        return {}

    opened = await api.open_case()
    case_id = opened.json()["case_id"]
    await api.customer_link(case_id)  # stored before it is sent, and logged once sent
    for _ in range(100):
        if "sent via" in lines.getvalue():
            break
        await asyncio.sleep(0.05)
    assert (await api.get(f"/cases/{case_id}/log-probe")).status_code == 200
    logging.getLogger("casedesk.api").info("after the request")

    records = parsed(lines)
    sent = [
        r for r in records if r["logger"] == "temporalio.activity" and "sent via" in r["message"]
    ]
    assert sent, records
    assert sent[0]["case_id"] == sent[0]["workflow_id"] == case_id
    assert sent[0]["run_id"]
    status = [r for r in records if r["logger"] == "temporalio.workflow"]
    assert status, records
    assert {r["case_id"] for r in status} == {case_id}
    assert all(r["run_id"] == sent[0]["run_id"] for r in status)
    (route_line,) = [r for r in records if r["message"] == "probe for a case route"]
    assert route_line["case_id"] == case_id
    (outside,) = [r for r in records if r["message"] == "after the request"]
    assert "case_id" not in outside  # the request's case does not outlive it
    # The customer's name, email and address never reach a line.
    text = lines.getvalue()
    for personal in ("Ada Customer", "ada@example.com", "1 Main St", "E1 6AN"):
        assert personal not in text


def test_json_format_is_put_on_every_handler_of_the_process():
    root = logging.getLogger()
    access = logging.getLogger("uvicorn.access")
    handler = logging.StreamHandler(io.StringIO())
    access.addHandler(handler)
    formatters = [(h, h.formatter) for h in root.handlers]
    flags = (activity.logger.activity_info_on_message, workflow.logger.workflow_info_on_message)
    try:
        configure_logging(Settings(_env_file=None, log_format="json"))
        assert type(handler.formatter) is type(json_formatter())
        assert not activity.logger.activity_info_on_message
        assert not workflow.logger.workflow_info_on_message
    finally:
        access.removeHandler(handler)
        for each, formatter in formatters:
            each.setFormatter(formatter)
            each.filters[:] = [f for f in each.filters if type(f).__name__ != "CaseIds"]
        activity.logger.activity_info_on_message, workflow.logger.workflow_info_on_message = flags


def test_the_log_format_is_text_or_json():
    assert Settings(_env_file=None).log_format == "text"
    with pytest.raises(ValueError, match="log_format"):
        Settings(_env_file=None, log_format="xml")  # type: ignore[arg-type]


async def test_with_json_logs_the_sdk_cores_own_lines_are_forwarded_to_python_logging(
    time_env: WorkflowEnvironment, settings: Settings, lines: io.StringIO
):
    configured = settings.model_copy(
        update={
            "log_format": "json",
            "temporal_address": time_env.client.service_client.config.target_host,
        }
    )
    runtime = worker_runtime(configured)
    assert runtime is not None
    client = await connect(configured, runtime=runtime)
    # Core warns at every worker start against this test server (an old server version).
    async with Worker(client, task_queue=f"tq-{uuid.uuid4()}", activities=[greet]):
        for _ in range(100):
            if "sdk_core" in lines.getvalue():
                break
            await asyncio.sleep(0.05)
    core = [r for r in parsed(lines) if r["logger"].startswith("temporalio.core")]
    assert core, lines.getvalue()
    assert core[0]["level"] == "WARNING" and "temporal_log" not in core[0]
