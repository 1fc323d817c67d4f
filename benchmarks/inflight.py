"""In-flight efficiency: one worker process with many calls in flight to a simulator with a
fixed latency, against the ideal rate (calls in flight / latency) and against a bare
asyncio + httpx process with the same calls in flight.

The worker runs Celery's gevent pool with a greenlet per call in flight, which is how a
fleet with hundreds of calls per process is run. A second drain runs the threads pool
with a thread per call. A worker's rate counts completions once every slot is busy (the first
and last latency cycle are left out); the bare process counts the same way. CPU is the
worker's over the whole drain.
"""

from typing import Any

from sqlalchemy import select

from agentfleet.settings import Settings
from benchmarks.chat import triage_body
from benchmarks.context import QUEUE, BenchContext, Ledger
from benchmarks.fleet import (
    agent_worker,
    job_client,
    run_bare_client,
    simulator,
    submit_jobs,
    wait_drained,
)
from benchmarks.ledger_checks import check_jobs_succeeded
from benchmarks.results import Row, ScenarioResult, Target
from benchmarks.sampling import MIB, ProcessSampler
from benchmarks.stats import steady_rate
from ledger.models import Job

SCENARIO = "inflight"
EFFICIENCY_TARGET = Target("ratio", ">=", 0.9)
CPU_TARGET = Target("figure", "<", 1.0)


def run(ctx: BenchContext) -> ScenarioResult:
    size = ctx.size
    concurrency, latency_s = size.inflight_concurrency, size.inflight_latency_s
    ideal = concurrency / latency_s
    with simulator(ctx, SCENARIO, latency_ms=latency_s * 1000) as port:
        worker = _worker_run(ctx, port, "gevent")
        threads = _worker_run(ctx, port, "threads")
        bare = run_bare_client(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            triage_body(Settings()),
            concurrency,
            size.inflight_jobs,
            latency_s,
            ctx.log_dir(SCENARIO),
        )
    result = ScenarioResult(SCENARIO, "In-flight efficiency")
    result.details = {
        "concurrency": concurrency,
        "latency_s": latency_s,
        "jobs": size.inflight_jobs,
        "worker": worker,
        "threads_worker": threads,
        "bare_client": bare,
    }
    in_flight = f"{concurrency} in flight, {latency_s:g} s latency"
    ideal_label = f"ideal: {concurrency} / {latency_s:g} s"
    result.rows = [
        Row("inflight.efficiency", f"completed jobs/s, one gevent worker, {in_flight}", "jobs/s",
            worker["jobs_per_s"], ideal_label, ideal, EFFICIENCY_TARGET),
        Row("inflight.bare", f"completed jobs/s, one gevent worker, {in_flight}", "jobs/s",
            worker["jobs_per_s"], "asyncio + httpx process, same calls", bare["calls_per_s"]),
        Row("inflight.cpu", "gevent worker CPU", "cores", worker["cores"],
            "asyncio + httpx process CPU", bare["cores"], CPU_TARGET),
        Row("inflight.rss", "gevent worker peak RSS", "MiB", worker["max_rss_mib"],
            "asyncio + httpx process peak RSS", bare["max_rss_mib"]),
        Row("inflight.threads", f"completed jobs/s, one threads worker, {in_flight}", "jobs/s",
            threads["jobs_per_s"], ideal_label, ideal),
        Row("inflight.threads_cpu", "threads worker CPU", "cores", threads["cores"],
            "gevent worker CPU", worker["cores"]),
    ]  # fmt: skip
    return result


def _worker_run(ctx: BenchContext, port: int, pool: str) -> dict[str, Any]:
    size = ctx.size
    with ctx.ledger(SCENARIO) as ledger:
        broker = ctx.redis_client()
        client = job_client(ctx, ledger)
        try:
            submit_jobs(client, size.inflight_jobs)
        finally:
            client.close()
        env = ctx.fleet_env(ledger, port)
        try:
            slots = size.inflight_concurrency
            with agent_worker(ctx, SCENARIO, env, slots, ready=False, pool=pool) as worker:
                sampler = ProcessSampler(worker.popen.pid).start()
                drain = wait_drained(broker, QUEUE, size.inflight_jobs, 600, worker)
                sampler.stop()
        finally:
            broker.flushdb()
            broker.close()
        check_jobs_succeeded(ledger, size.inflight_jobs)
        finish_times = _finish_times(ledger)
    return {
        "jobs_per_s": steady_rate(finish_times, size.inflight_latency_s),
        "elapsed_s": drain.elapsed_s,
        "cores": sampler.cores_between(drain.first_taken_at, drain.drained_at),
        "max_rss_mib": sampler.max_rss_between(drain.first_taken_at, drain.drained_at) / MIB,
    }


def _finish_times(ledger: Ledger) -> list[float]:
    with ledger.sessions() as session:
        finished = session.scalars(select(Job.finished_at)).all()
    return [moment.timestamp() for moment in finished if moment is not None]
