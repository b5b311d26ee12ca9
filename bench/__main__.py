"""`make bench`: what a case costs, as ratios against a bare one-activity Temporal workflow
measured in the same run on the same dev server (so the machine's speed cancels out).

    python -m bench [--cases 40 [1000 ...]] [--rows 10000 100000] [--backends sqlite postgresql]

Measures, for N cases and N bare workflows:
- open latency: start → the case is waiting on the customer (real activities, SQLite outbox)
  vs start → result of a bare workflow with one no-op activity;
- throughput: N started at once, time until all reached that point;
- worker memory: Python heap growth (tracemalloc) per open, cached case vs per bare workflow.
Then `bench.listing`: `GET /cases` at 10,000 and 100,000 index rows on SQLite and
PostgreSQL (p95 and query plans). Targets are ratios and latencies; a run that misses one
exits 1. Each part records its figures in `bench/results.json`; the burst (`bench.burst`) runs
against `make run` and records its own.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import SQLModel, col, select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import schemas.tables as tables
from bench import listing
from bench.baseline import BareWaitingWorkflow, BareWorkflow, noop
from bench.results import record
from core.db import SessionFactory, make_engine, make_session_factory
from core.settings import Settings
from core.temporal import SEARCH_ATTRIBUTES, converter_for
from schemas.cases import Address, Customer, FailedAttempt, FailedDeliveryInput
from schemas.enums import CaseStatus, ContactKind, MessageStatus
from worker import build_activities, worker_options, workflow_runner
from workflows.failed_delivery import FailedDeliveryWorkflow

# A case does several activities (record, attempt, notice email) before it waits; these are
# the ceilings this project holds itself to.
TARGETS = {"open_latency_ratio": 6.0, "throughput_ratio": 15.0, "memory_ratio": 10.0}
ARRIVAL_LIMIT_S = 300


def case_input(shipment_id: str) -> FailedDeliveryInput:
    return FailedDeliveryInput(
        shipment_id=shipment_id,
        client_id="bench-client",
        depot_id="bench-depot",
        customer=Customer(name="Bench Customer", email="bench@example.com"),
        address=Address(line1="1 Bench Road", city="Leeds", postal_code="LS1"),
        attempt=FailedAttempt(
            attempt_number=1,
            reason="not_home",
            driver_id="bench-driver",
            attempted_at=datetime.now(UTC),
        ),
    )


async def seed(sessions) -> None:
    async with sessions() as session:
        session.add(tables.Client(id="bench-client", name="Bench"))
        session.add(
            tables.Depot(
                id="bench-depot",
                name="Bench depot",
                address="1 Depot Way",
                dispatcher_name="Dee Spatcher",
                dispatcher_email="dispatch@example.com",
            )
        )
        await session.flush()
        session.add(
            tables.ClientContact(
                client_id="bench-client",
                kind=ContactKind.SHIPMENT_NOTIFICATIONS,
                name="Bench contact",
                email="contact@example.com",
            )
        )
        await session.commit()


class Arrivals:
    """Cases reaching their first customer message (the notice sent, the index row waiting
    on the customer), seen with one database query for all of them every 10 ms: polling each
    case's workflow with a query would load the worker being measured."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def wait(self, case_id: str) -> None:
        arrived = asyncio.get_running_loop().create_future()
        self._waiting[case_id] = arrived
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        await arrived

    async def _poll(self) -> None:
        while self._waiting:
            async with self._sessions() as session:
                found = await session.exec(
                    select(tables.Message.case_id)
                    .join(tables.Case, col(tables.Case.id) == col(tables.Message.case_id))
                    .where(
                        col(tables.Message.case_id).in_(list(self._waiting)),
                        col(tables.Message.key).endswith("/customer-notice"),
                        tables.Message.status == MessageStatus.SENT,
                        tables.Case.status == CaseStatus.WAITING_ON_CUSTOMER,
                    )
                )
                for case_id in set(found.all()):
                    if (arrived := self._waiting.pop(case_id, None)) and not arrived.done():
                        arrived.set_result(None)
            await asyncio.sleep(0.01)


async def timed(coro) -> float:
    started = time.perf_counter()
    await coro
    return time.perf_counter() - started


async def main(cases: int) -> dict[str, Any]:
    temporal = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    data_dir = Path(tempfile.mkdtemp(prefix="casedesk-bench-"))
    settings = Settings(data_dir=data_dir, link_secret="bench-" + "x" * 40)
    engine = make_engine(settings.resolved_database_url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    sessions = make_session_factory(engine)
    await seed(sessions)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal,
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=converter_for(settings),  # as in production: every payload encrypted
        dev_server_log_level="error",
    )
    queue = f"bench-{uuid.uuid4()}"
    results: dict[str, float] = {}
    try:
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[FailedDeliveryWorkflow, BareWorkflow, BareWaitingWorkflow],
            activities=[*build_activities(settings, sessions), noop],
            # As `make run`'s workers run (sandbox passthrough, concurrency), with every case
            # kept in the cache so its memory can be measured.
            workflow_runner=workflow_runner(),
            **(worker_options(settings) | {"max_cached_workflows": 10 * cases}),
        ):
            client = env.client
            run = uuid.uuid4().hex[:6]
            arrivals = Arrivals(sessions)

            async def bare(i: int, kind: str = "seq") -> None:
                await client.execute_workflow(
                    BareWorkflow.run, "x", id=f"bare-{kind}-{run}-{i}", task_queue=queue
                )

            async def case(i: int, kind: str = "seq") -> None:
                handle = await client.start_workflow(
                    FailedDeliveryWorkflow.run,
                    case_input(f"B{kind}{run}{i}"),
                    id=f"failed-delivery-B{kind}{run}{i}",
                    task_queue=queue,
                )
                try:
                    await asyncio.wait_for(arrivals.wait(handle.id), timeout=ARRIVAL_LIMIT_S)
                except TimeoutError:
                    raise SystemExit(
                        f"{handle.id} not waiting on its customer after {ARRIVAL_LIMIT_S} s "
                        "(an activity retrying? see the worker's log above)"
                    ) from None

            await bare(-1, "warm")
            await case(-1, "warm")
            bare_lat = [await timed(bare(i)) for i in range(cases)]
            case_lat = [await timed(case(i)) for i in range(cases)]
            results["bare_open_ms"] = statistics.median(bare_lat) * 1000
            results["case_open_ms"] = statistics.median(case_lat) * 1000
            results["open_latency_ratio"] = results["case_open_ms"] / results["bare_open_ms"]

            bare_all = await timed(asyncio.gather(*(bare(i, "par") for i in range(cases))))
            case_all = await timed(asyncio.gather(*(case(i, "par") for i in range(cases))))
            results["bare_per_s"] = cases / bare_all
            results["case_per_s"] = cases / case_all
            results["throughput_ratio"] = case_all / bare_all

            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            handles = [
                await client.start_workflow(
                    BareWaitingWorkflow.run, "x", id=f"mem-bare-{run}-{i}", task_queue=queue
                )
                for i in range(cases)
            ]
            await asyncio.sleep(1.0)
            bare_mem = (tracemalloc.get_traced_memory()[0] - before) / cases
            before = tracemalloc.get_traced_memory()[0]
            await asyncio.gather(*(case(i, "mem") for i in range(cases)))
            case_mem = (tracemalloc.get_traced_memory()[0] - before) / cases
            tracemalloc.stop()
            for handle in handles:
                await handle.terminate()
            results["bare_kib_per_workflow"] = bare_mem / 1024
            results["case_kib_per_case"] = case_mem / 1024
            results["memory_ratio"] = case_mem / max(bare_mem, 1.0)
    finally:
        await env.shutdown()
        await engine.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)

    print(f"casedesk bench: {cases} cases vs {cases} bare one-activity workflows, one run")
    for name, value in results.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("  ok" if value <= target else "  OVER TARGET")
        limit = "" if target is None else f"  (target <= {target:g})"
        print(f"  {name:<24} {value:10.2f}{limit}{verdict}")
    missed = [k for k, v in TARGETS.items() if not results[k] <= v]
    return (
        {"cases": cases, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
        | results
        | {"targets": TARGETS, "missed": missed}
    )


def cost_curve(sizes: list[int]) -> bool:
    """The ratios at each size (the cost curve), recorded under `ratios` by size."""
    curve = {str(cases): asyncio.run(main(cases)) for cases in sizes}
    record("ratios", curve)
    return not any(figures["missed"] for figures in curve.values())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", type=int, nargs="+", default=[40], help="cases per size (a cost curve)"
    )
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[10_000, 100_000], help="GET /cases index sizes"
    )
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    ratios_met = cost_curve(args.cases)
    listing_met = listing.run(args.rows, args.backends)
    sys.exit(0 if ratios_met and listing_met else 1)
