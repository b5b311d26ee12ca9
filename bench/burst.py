"""The end-of-day burst, against a running stack (`make run`): N failed-delivery openings
posted over HTTP at once, as a depot's routing system sends a day's failed attempts.

    CASEDESK_WORKER_METRICS_ADDRESS=127.0.0.1:9464 make run      # in one terminal
    python -m bench.burst [--cases 500]                           # in another

Measures, in one run:
- every opening's HTTP answer: errors, p50, p99 and the slowest;
- the time until every case of the burst is waiting on its customer (`GET /cases`);
- the workers' workflow tasks, from the Temporal SDK's own metrics on each worker
  (`temporal_workflow_task_execution_latency`, `..._schedule_to_start_latency`, failures):
  the slowest histogram bucket reached and how many tasks took over 2 s. Without worker
  metrics (the setting off) those figures are missing and the run fails.
Writes the figures to `bench/results.json` (under `burst`) and exits 1 when a target is
missed. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.results import record

TARGETS = {"errors": 0, "p99_s": 1.0, "tasks_over_2s": 0, "task_failures": 0}
TASK_LIMIT_S = 2.0
EXECUTION = "temporal_workflow_task_execution_latency"
SCHEDULE_TO_START = "temporal_workflow_task_schedule_to_start_latency"
FAILED = "temporal_workflow_task_execution_failed"


def opening(run: str, n: int) -> dict[str, Any]:
    return {
        "shipment_id": f"BURST-{run}-{n:04d}",
        "client_id": "demo-shop",
        "driver_id": "driver-001",
        "customer": {"name": f"Burst Customer {n}", "email": f"burst{n}@example.com"},
        "address": {"line1": f"{n} High St", "city": "London", "postal_code": "N1 1AA"},
        "attempt_number": 1,
        "reason": "not_home",
        "attempted_at": datetime.now(UTC).isoformat(),
    }


def histogram(text: str, name: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts (upper bound -> count), summed over labels."""
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return buckets


def counter(text: str, name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == name
        for sample in family.samples
        if sample.name in (name, f"{name}_total")
    )


def slowest_bucket(buckets: dict[float, float]) -> float | str:
    """The upper bound of the highest bucket any observation fell in ("over N" past the
    last bound N)."""
    previous, slowest = 0.0, 0.0
    for bound in sorted(buckets):
        if buckets[bound] > previous:
            slowest = bound
        previous = buckets[bound]
    if math.isinf(slowest):
        return f"over {max(b for b in buckets if not math.isinf(b)):g}"
    return slowest


def over(buckets: dict[float, float], limit: float) -> float:
    """Observations above the highest bucket bound at or below `limit` (exact when `limit`
    is a bound, as 2 s is in `core.telemetry.LATENCY_BUCKETS`)."""
    if not buckets:
        return math.nan
    total = buckets.get(math.inf, max(buckets.values()))
    within = max((count for bound, count in buckets.items() if bound <= limit), default=0.0)
    return total - within


async def scrape(http: httpx.AsyncClient, urls: list[str]) -> list[str]:
    return [(await http.get(url, timeout=10)).text for url in urls]


def during(before: list[str], after: list[str], name: str) -> dict[float, float]:
    """A histogram's buckets over the run: every worker's counts after, less those before."""
    buckets: dict[float, float] = {}
    for text_before, text_after in zip(before, after, strict=True):
        earlier = histogram(text_before, name)
        for bound, count in histogram(text_after, name).items():
            buckets[bound] = buckets.get(bound, 0.0) + count - earlier.get(bound, 0.0)
    return buckets


async def measure(
    cases: int, api: str, key: str, metrics: list[str], within: float
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    run = uuid.uuid4().hex[:6]
    limits = httpx.Limits(max_connections=cases, max_keepalive_connections=cases)
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=120, limits=limits) as http:
        before = await scrape(http, metrics)

        async def post(n: int) -> tuple[float, int]:
            started = time.perf_counter()
            try:
                response = await http.post("/cases/failed-deliveries", json=opening(run, n))
                code = response.status_code
            except httpx.HTTPError:
                code = 0
            return time.perf_counter() - started, code

        started = time.perf_counter()
        answers = await asyncio.gather(*(post(n) for n in range(cases)))
        answered = time.perf_counter() - started
        waiting = 0
        while time.perf_counter() - started < within:
            try:
                page = await http.get(
                    "/cases",
                    params={"q": f"BURST-{run}", "status": "waiting_on_customer", "limit": 1},
                )
            except httpx.HTTPError:
                continue
            waiting = page.json()["total"] if page.status_code == 200 else waiting
            if waiting >= cases:
                break
            await asyncio.sleep(0.5)
        all_waiting = time.perf_counter() - started
        await asyncio.sleep(2)  # the last tasks' metrics reach the exporters
        after = await scrape(http, metrics)

    latencies = sorted(seconds for seconds, _ in answers)
    results: dict[str, Any] = {
        "cases": cases,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "errors": sum(1 for _, code in answers if code != 201),
        "answers": dict(Counter(str(code) for _, code in answers)),
        "p50_s": statistics.median(latencies),
        "p99_s": latencies[max(0, math.ceil(0.99 * len(latencies)) - 1)],
        "max_s": latencies[-1],
        "all_answered_s": answered,
        "waiting": waiting,
        "all_waiting_s": all_waiting if waiting >= cases else None,
        "cases_per_s": cases / all_waiting if waiting >= cases else None,
        "worker_metrics": len(metrics),
    }
    if metrics:
        execution = during(before, after, EXECUTION)
        queued = during(before, after, SCHEDULE_TO_START)
        failures = sum(
            counter(text_after, FAILED) - counter(text_before, FAILED)
            for text_before, text_after in zip(before, after, strict=True)
        )
        results |= {
            "workflow_tasks": execution.get(math.inf, 0.0),
            "slowest_task_bucket_s": slowest_bucket(execution),
            "tasks_over_2s": over(execution, TASK_LIMIT_S),
            "slowest_schedule_to_start_bucket_s": slowest_bucket(queued),
            "task_failures": failures,
        }
    return results


def main(cases: int, api: str, key_file: Path, metrics: list[str], within: float) -> int:
    results = asyncio.run(measure(cases, api, key_file.read_text().strip(), metrics, within))
    missed = [
        name
        for name, target in TARGETS.items()
        if not isinstance(results.get(name), int | float) or not results[name] <= target
    ]
    if results["all_waiting_s"] is None:
        missed.append("all_waiting_s")
    results["missed"] = missed
    record("burst", results)
    print(f"casedesk burst: {cases} failed-delivery openings at once against {api}")
    for name, value in results.items():
        target = TARGETS.get(name)
        limit = "" if target is None else f"  (target <= {target:g})"
        shown = f"{value:10.3f}" if isinstance(value, float) else f"{value!s:>10}"
        print(f"  {name:<36} {shown}{limit}")
    return 1 if missed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--key-file", type=Path, default=Path(".data/dev-api-key"))
    parser.add_argument(
        "--metrics",
        nargs="*",
        default=["http://127.0.0.1:9464/metrics", "http://127.0.0.1:9465/metrics"],
        help="the workers' SDK metrics endpoints",
    )
    parser.add_argument("--within", type=float, default=300, help="seconds to wait for all")
    args = parser.parse_args()
    sys.exit(main(args.cases, args.api, args.key_file, args.metrics, args.within))
