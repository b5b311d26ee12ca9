"""The worker's Temporal SDK metrics: a client connected with `core.telemetry.worker_runtime`
serves them for Prometheus on `CASEDESK_WORKER_METRICS_ADDRESS`, durations in seconds; the
names the README's alert rules use are there once a workflow has run."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.settings import Settings
from core.telemetry import worker_runtime, workflow_runner
from core.temporal import connect


@activity.defn
async def greet(name: str) -> str:
    if activity.info().attempt == 1:  # one failure, for temporal_activity_execution_failed
        raise RuntimeError("first attempt fails")
    return f"hello {name}"


TASK_FAILURES = [1]
"""Workflow tasks still to fail, for temporal_workflow_task_execution_failed."""


@workflow.defn(sandboxed=False)  # this test module imports what a sandbox refuses
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        if TASK_FAILURES[0]:  # the first workflow task raises; its retry goes on
            TASK_FAILURES[0] -= 1
            raise RuntimeError("a bug in the workflow code")
        return await workflow.execute_activity(
            greet,
            name,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


RULE_METRICS = {
    "temporal_workflow_task_schedule_to_start_latency",
    "temporal_activity_schedule_to_start_latency",
    "temporal_activity_execution_latency",
    "temporal_workflow_completed",
    "temporal_activity_execution_failed",
    "temporal_workflow_task_execution_failed",
}


async def test_the_worker_serves_the_sdk_metrics_on_its_address(
    time_env: WorkflowEnvironment, settings: Settings
):
    TASK_FAILURES[0] = 1
    address = f"127.0.0.1:{free_port()}"
    configured = settings.model_copy(
        update={
            "worker_metrics_address": address,
            "temporal_address": time_env.client.service_client.config.target_host,
        }
    )
    client = await connect(configured, runtime=worker_runtime(configured))
    queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[GreetingWorkflow],
        activities=[greet],
        workflow_runner=workflow_runner(),
    ):
        result = await client.execute_workflow(
            GreetingWorkflow.run, "ops", id=f"greeting-{uuid.uuid4()}", task_queue=queue
        )
        assert result == "hello ops"
        async with httpx.AsyncClient() as http:
            for _ in range(50):
                text = (await http.get(f"http://{address}/metrics")).text
                families = {f.name: f for f in text_string_to_metric_families(text)}
                if families.keys() >= RULE_METRICS:
                    break
                await asyncio.sleep(0.1)
    assert families.keys() >= RULE_METRICS, sorted(families)
    # Seconds, not milliseconds: the histogram's first bucket is below one.
    buckets = [
        float(sample.labels["le"])
        for sample in families["temporal_workflow_task_schedule_to_start_latency"].samples
        if sample.name.endswith("_bucket")
    ]
    assert min(buckets) < 1
