"""A bare asyncio + httpx process that keeps a number of chat calls in flight.

It is the baseline of the in-flight and memory scenarios: the same requests as a worker
sends, to the same simulator, with nothing else around them. It prints one JSON object:
calls/s once every slot is busy, CPU cores used, RSS before and at its peak, and the
calls sent again.

The simulator's server closes a connection after 5 s without a request (uvicorn's
keep-alive timeout). A connection can wait that long in this client's pool when the
client is short of CPU, and a request sent on it as the server closes it fails with
ReadError or RemoteProtocolError. Such a request is sent again, on a new connection,
as an HTTP client with retries would.

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
SEND_AGAIN_AFTER = (httpx.ReadError, httpx.RemoteProtocolError)
MAX_SENDS = 3


async def hold_calls(
    url: str, body: dict[str, Any], concurrency: int, calls: int, timeout_s: float
) -> tuple[list[float], int]:
    """Make ``calls`` POSTs with at most ``concurrency`` in flight. Return their finish
    times and the number of requests sent again."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    finished: list[float] = []
    sent_again = 0
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=timeout_s) as http:

        async def call() -> None:
            nonlocal sent_again
            async with slots:
                for send in range(1, MAX_SENDS + 1):
                    try:
                        await _post(http, url, body)
                        break
                    except SEND_AGAIN_AFTER:
                        if send == MAX_SENDS:
                            raise
                        sent_again += 1
                finished.append(time.time())

        await asyncio.gather(*(call() for _ in range(calls)))
    return finished, sent_again


async def _post(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> None:
    response = await http.post(url, json=body, headers={"Authorization": "Bearer simulator"})
    response.raise_for_status()
    response.json()


def measure(args: argparse.Namespace) -> dict[str, float]:
    body = json.loads(Path(args.body).read_text(encoding="utf-8"))
    idle_rss_kib = _status_kib("VmRSS")
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.time()
    finished, sent_again = asyncio.run(
        hold_calls(args.url, body, args.concurrency, args.calls, args.timeout)
    )
    elapsed = time.time() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "calls_per_s": steady_rate(finished, args.cycle),
        "elapsed_s": elapsed,
        "cores": cpu_s / elapsed,
        "idle_rss_mib": idle_rss_kib / KIB,
        "max_rss_mib": _status_kib("VmHWM") / KIB,
        "sent_again": sent_again,
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
