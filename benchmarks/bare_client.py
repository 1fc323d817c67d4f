"""A bare asyncio + httpx process that keeps a number of chat calls in flight.

It is the baseline of the in-flight and memory scenarios: the same requests as a worker
sends, to the same simulator, with nothing else around them. It prints one JSON object:
calls/s once every slot is busy, CPU cores used, and RSS before and at its peak.

    python -m benchmarks.bare_client --url URL --body FILE --concurrency 500 --calls 3000
"""

import argparse
import asyncio
import json
import resource
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.stats import steady_rate

KIB = 1024


async def hold_calls(
    url: str, body: dict[str, Any], concurrency: int, calls: int, timeout_s: float
) -> list[float]:
    """Make ``calls`` POSTs with at most ``concurrency`` in flight; return their finish times."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": "Bearer simulator"}
    finished: list[float] = []
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=timeout_s) as http:

        async def call() -> None:
            async with slots:
                response = await http.post(url, json=body, headers=headers)
                response.raise_for_status()
                response.json()
                finished.append(time.time())

        await asyncio.gather(*(call() for _ in range(calls)))
    return finished


def measure(args: argparse.Namespace) -> dict[str, float]:
    body = json.loads(Path(args.body).read_text(encoding="utf-8"))
    idle_rss_kib = _status_kib("VmRSS")
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.time()
    finished = asyncio.run(hold_calls(args.url, body, args.concurrency, args.calls, args.timeout))
    elapsed = time.time() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "calls_per_s": steady_rate(finished, args.cycle),
        "elapsed_s": elapsed,
        "cores": cpu_s / elapsed,
        "idle_rss_mib": idle_rss_kib / KIB,
        "max_rss_mib": _status_kib("VmHWM") / KIB,
    }


def _status_kib(field: str) -> float:
    """Return a size from /proc/self/status, such as VmRSS or its peak VmHWM, in KiB.

    ru_maxrss is not used because it keeps the peak of the forked parent across exec.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return float(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} line")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="chat completions URL")
    parser.add_argument("--body", required=True, help="JSON file with the request body")
    parser.add_argument("--concurrency", type=int, required=True, help="calls in flight")
    parser.add_argument("--calls", type=int, required=True, help="calls in all")
    parser.add_argument("--cycle", type=float, default=1.0, help="simulator latency in s")
    parser.add_argument("--timeout", type=float, default=120.0, help="per-call timeout in s")
    print(json.dumps(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
