"""The floor under the burst's request latency on this machine: `--requests` POSTs of an
opening's JSON body at once to a FastAPI app that only parses the body and answers 201 (no
validation, database or Temporal), served by one uvicorn process, the client on the same
machine as in `bench.burst`.

    python -m bench.floor [--requests 500]

Whatever `bench.burst` measures above this is casedesk's own cost; this much is the
machine's (and the client's, which shares its cores).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

import httpx
from fastapi import FastAPI

from bench.burst import opening

app = FastAPI()
PORT = 8111


@app.post("/open", status_code=201)
async def open_case(body: dict[str, Any]) -> dict[str, int]:
    return {"fields": len(body)}


async def measure(requests: int) -> dict[str, float]:
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "bench.floor:app",
        "--port",
        str(PORT),
        "--log-level",
        "warning",
    )
    try:
        limits = httpx.Limits(max_connections=requests, max_keepalive_connections=requests)
        base = f"http://127.0.0.1:{PORT}"
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
            for _ in range(100):  # until the server is up
                try:
                    await http.post("/open", json=opening("floor", 0))
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)

            async def one(n: int) -> float:
                started = time.perf_counter()
                response = await http.post("/open", json=opening("floor", n))
                response.raise_for_status()
                return time.perf_counter() - started

            started = time.perf_counter()
            latencies = sorted(await asyncio.gather(*(one(n) for n in range(requests))))
            total = time.perf_counter() - started
    finally:
        server.terminate()
        await server.wait()
    return {
        "requests": requests,
        "p50_s": statistics.median(latencies),
        "p99_s": latencies[max(0, int(len(latencies) * 0.99) - 1)],
        "all_answered_s": total,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    figures = asyncio.run(measure(parser.parse_args().requests))
    print("floor: an app that only parses the body, one process, client on the same machine")
    for name, value in figures.items():
        print(f"  {name:<16} {value:10.3f}")
