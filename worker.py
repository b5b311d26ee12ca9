"""The casedesk worker: builds the activities with their clients once, registers every case
workflow, and runs until interrupted.

    python worker.py        (what `make run` starts; settings from the environment)
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from activities.claims import ClaimActivities
from activities.drivers import DriverActivities
from activities.invoices import InvoiceActivities
from activities.invoicing import InvoicingActivities
from activities.messaging import MessagingActivities
from activities.records import RecordActivities
from activities.reporting import ReportingActivities
from core.db import SessionFactory, make_engine, make_session_factory
from core.documents import LocalDocumentStore
from core.invoicing_schedules import sync_all_schedules
from core.logs import configure_logging
from core.report_schedules import sync_all_report_schedules
from core.settings import Settings
from core.telemetry import tracer_provider, tracing_interceptors, worker_runtime, workflow_runner
from core.temporal import TemporalConfigError, connect
from schemas.case_types import CASE_TYPES, CaseTypeSpec
from workflows.invoicing_run import InvoicingRunWorkflow
from workflows.report_run import ReportRunWorkflow


def workflow_class(spec: CaseTypeSpec) -> type:
    """The workflow class the registry names for a case type (`module:Class`)."""
    module, _, name = spec.workflow.partition(":")
    cls: type = getattr(importlib.import_module(module), name)
    return cls


# Every case type's workflow, the invoicing run (not a case: it opens one) and the report run.
WORKFLOWS: Sequence[type] = (
    *(workflow_class(spec) for spec in CASE_TYPES.values()),
    InvoicingRunWorkflow,
    ReportRunWorkflow,
)

log = logging.getLogger("casedesk.worker")


def build_activities(
    settings: Settings, sessions: SessionFactory, temporal: Client | None = None
) -> list[Callable[..., Any]]:
    records = RecordActivities(sessions)
    documents = LocalDocumentStore.from_settings(settings)
    messaging = MessagingActivities.from_settings(settings, sessions=sessions, documents=documents)
    claims = ClaimActivities(sessions=sessions, documents=documents)
    drivers = DriverActivities(sessions, documents)
    invoices = InvoiceActivities(sessions)
    invoicing = InvoicingActivities(
        sessions,
        documents,
        issuer=settings.email_from_name,
        temporal=temporal,
        task_queue=settings.temporal_task_queue,
    )
    reporting = ReportingActivities(
        sessions,
        documents,
        issuer=settings.email_from_name,
        public_base_url=settings.resolved_public_base_url,
    )
    return [
        records.record_case,
        records.record_failed_attempt,
        records.schedule_redelivery,
        records.update_shipment_status,
        messaging.send_message,
        claims.gather_system_evidence,
        claims.compile_claim_package,
        drivers.set_driver_status,
        drivers.record_driver_document,
        drivers.build_briefing_pack,
        invoices.set_dispatch_hold,
        invoices.client_depots,
        invoicing.issue_invoice,
        invoicing.render_invoice_documents,
        invoicing.unpaid_invoice_opening,
        invoicing.sync_invoicing_schedule,
        reporting.scheduled_report_period,
        reporting.prepare_report,
        reporting.mark_report_sent,
    ]


def worker_options(settings: Settings) -> dict[str, Any]:
    """How much one worker process takes on at a time (CASEDESK_WORKER_*). Several worker
    processes poll the same task queue; Temporal hands each task to one of them."""
    return {
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(
            maximum=settings.worker_workflow_task_pollers
        ),
        "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(
            maximum=settings.worker_activity_task_pollers
        ),
    }


def build_worker(client: Client, settings: Settings, sessions: SessionFactory) -> Worker:
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=list(WORKFLOWS),
        activities=build_activities(settings, sessions, client),
        # Tracing (core.telemetry) comes from the client's interceptors; its module passes
        # through the sandbox whether tracing is on or not.
        workflow_runner=workflow_runner(),
        **worker_options(settings),
    )


async def run(settings: Settings) -> None:
    tracing = tracer_provider(settings, "casedesk-worker")
    # The SDK's metrics are recorded by the runtime the client is connected with.
    client = await connect(
        settings, interceptors=tracing_interceptors(tracing), runtime=worker_runtime(settings)
    )
    if settings.worker_metrics_address:
        log.info("Temporal SDK metrics on http://%s/metrics", settings.worker_metrics_address)
    engine = make_engine(settings.resolved_database_url, pool=settings.database_pool)
    sessions = make_session_factory(engine)
    worker = build_worker(client, settings, sessions)
    # Every client with a rate agreement gets its invoicing schedule (idempotent: an existing
    # one is brought to its agreement's cycle and the client's time zone, paused or not).
    synced = await sync_all_schedules(
        client, sessions, task_queue=settings.temporal_task_queue, now=datetime.now(UTC)
    )
    log.info("invoicing schedules in step for %d clients", len(synced))
    # Every client that gets reports has its report schedules, at its hour in its zone.
    reports = await sync_all_report_schedules(
        client, sessions, task_queue=settings.temporal_task_queue
    )
    log.info("report schedules in step: %d", len(reports))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling %s on %s (namespace %s)",
        settings.temporal_task_queue,
        settings.temporal_address,
        settings.temporal_namespace,
    )
    try:
        async with worker:
            await stop.wait()
    finally:
        await engine.dispose()
        if tracing is not None:  # flushes the spans still batched
            tracing.shutdown()


def main() -> None:
    settings = Settings()
    configure_logging(settings, level=logging.INFO)
    try:
        asyncio.run(run(settings))
    except TemporalConfigError as error:  # a setting to fix, not a crash to debug
        raise SystemExit(f"worker: {error}") from None


if __name__ == "__main__":
    main()
