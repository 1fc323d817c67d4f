"""Memory: RSS of one worker process with many calls in flight, against a bare asyncio +
httpx process with the same calls in flight.

The simulator's latency keeps every call open while the jobs arrive. The worker's RSS is
sampled from the moment the simulator first reports all calls in flight; the bare
process reports its own peak RSS (VmHWM).
"""

import signal
import time
from typing import Any

from agentfleet.processes import ManagedProcess
from agentfleet.settings import Settings
from benchmarks.chat import triage_body
from benchmarks.context import BenchContext
from benchmarks.fleet import (
    agent_worker,
    job_client,
    run_bare_client,
    simulator,
    simulator_stats,
    submit_jobs,
)
from benchmarks.results import Row, ScenarioResult
from benchmarks.sampling import MIB, ProcessSampler

SCENARIO = "memory"
HOLD_S = 1.0
POLL_S = 0.25
KIB = 1024


def run(ctx: BenchContext) -> ScenarioResult:
    calls, latency_s = ctx.size.memory_in_flight, ctx.size.memory_latency_s
    with simulator(ctx, SCENARIO, latency_ms=latency_s * 1000) as port:
        worker = _worker_rss(ctx, port)
        bare = run_bare_client(f"http://127.0.0.1:{port}/v1/chat/completions",
                               triage_body(Settings()), calls, calls, latency_s,
                               ctx.log_dir(SCENARIO))  # fmt: skip
    held = worker["in_flight"]
    result = ScenarioResult(SCENARIO, "Memory with calls in flight")
    result.details = {"calls": calls, "latency_s": latency_s, "worker": worker,
                      "bare_client": bare}  # fmt: skip
    worker_per_call = (worker["max_rss_mib"] - worker["idle_rss_mib"]) * KIB / max(held, 1)
    bare_per_call = (bare["max_rss_mib"] - bare["idle_rss_mib"]) * KIB / calls
    result.rows = [
        Row("memory.rss", f"worker RSS, {held} calls in flight", "MiB", worker["max_rss_mib"],
            f"asyncio + httpx process, {calls} calls in flight", bare["max_rss_mib"]),
        Row("memory.per_call", "worker RSS above idle, per call in flight", "KiB",
            worker_per_call, "asyncio + httpx process, per call", bare_per_call),
    ]  # fmt: skip
    return result


def _worker_rss(ctx: BenchContext, port: int) -> dict[str, Any]:
    calls, latency_s = ctx.size.memory_in_flight, ctx.size.memory_latency_s
    with ctx.ledger(SCENARIO) as ledger:
        broker = ctx.redis_client()
        client = job_client(ctx, ledger)
        env = ctx.fleet_env(ledger, port)
        try:
            with agent_worker(ctx, SCENARIO, env, calls) as worker:
                sampler = ProcessSampler(worker.popen.pid).start()
                idle = sampler.sample()
                submit_jobs(client, calls)
                in_flight, reached_at = _wait_in_flight(port, calls, latency_s, worker)
                time.sleep(HOLD_S)
                sampler.stop()
                # Nothing more is measured, so the worker need not finish the calls in flight.
                worker.stop(signal.SIGKILL)
        finally:
            client.close()
            broker.flushdb()
            broker.close()
    return {
        "in_flight": in_flight,
        "seconds_to_hold_all": reached_at - idle.at,
        "idle_rss_mib": idle.rss / MIB,
        "max_rss_mib": sampler.max_rss_between(reached_at, reached_at + HOLD_S) / MIB,
    }


def _wait_in_flight(
    port: int, calls: int, latency_s: float, worker: ManagedProcess
) -> tuple[int, float]:
    """Wait until the simulator reports ``calls`` calls in flight at once, or for one latency.

    Returns the maximum of calls in flight at once and the time the wait ended.
    """
    deadline = time.monotonic() + latency_s
    most = 0
    while time.monotonic() < deadline:
        most = int(simulator_stats(port)["max_in_flight"])
        if most >= calls:
            break
        if worker.popen.poll() is not None:
            raise RuntimeError(f"{worker.name} exited; see {worker.log_path}")
        time.sleep(POLL_S)
    return most, time.time()
