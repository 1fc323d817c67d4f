"""Workload sizes: ``tiny`` for the smoke test, ``quick`` for a run under five minutes,
``full`` for the figures worth recording."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    name: str
    # Enqueue: jobs submitted one at a time, and in one batch.
    enqueue_single: int
    enqueue_batch: int
    # Throughput: jobs drained by one worker with a zero-latency simulator.
    throughput_jobs: int
    throughput_threads: int
    # In-flight efficiency: calls in flight in one worker, and the simulator's latency.
    inflight_concurrency: int
    inflight_latency_s: float
    inflight_rounds: int
    # Client overhead: calls made one at a time by each client.
    client_calls: int
    # Ledger ingest: rows written through the product's path, and by COPY.
    ingest_rows: int
    ingest_copy_rows: int
    ingest_threads: int
    # Rollup: usage rows in the rolled-up month, and timed runs of each query.
    rollup_rows: int
    rollup_repeats: int
    # Orchestration latency: jobs submitted one at a time to an idle fleet.
    latency_samples: int
    # Memory: calls in flight in one worker, and the simulator latency that keeps them open.
    memory_in_flight: int
    memory_latency_s: float

    @property
    def inflight_jobs(self) -> int:
        return self.inflight_concurrency * self.inflight_rounds


TINY = Size(
    name="tiny",
    enqueue_single=40,
    enqueue_batch=200,
    throughput_jobs=150,
    throughput_threads=8,
    inflight_concurrency=50,
    inflight_latency_s=0.5,
    inflight_rounds=4,
    client_calls=60,
    ingest_rows=200,
    ingest_copy_rows=5_000,
    ingest_threads=4,
    rollup_rows=20_000,
    rollup_repeats=1,
    latency_samples=20,
    memory_in_flight=100,
    memory_latency_s=3.0,
)

QUICK = Size(
    name="quick",
    enqueue_single=500,
    enqueue_batch=5_000,
    throughput_jobs=2_000,
    throughput_threads=8,
    inflight_concurrency=500,
    inflight_latency_s=1.0,
    inflight_rounds=3,
    client_calls=1_000,
    ingest_rows=3_000,
    ingest_copy_rows=100_000,
    ingest_threads=50,
    rollup_rows=500_000,
    rollup_repeats=3,
    latency_samples=200,
    memory_in_flight=1_000,
    memory_latency_s=15.0,
)

FULL = Size(
    name="full",
    enqueue_single=2_000,
    enqueue_batch=20_000,
    throughput_jobs=10_000,
    throughput_threads=8,
    inflight_concurrency=500,
    inflight_latency_s=1.0,
    inflight_rounds=20,
    client_calls=5_000,
    ingest_rows=20_000,
    ingest_copy_rows=1_000_000,
    ingest_threads=50,
    rollup_rows=10_000_000,
    rollup_repeats=3,
    latency_samples=1_000,
    memory_in_flight=1_000,
    memory_latency_s=15.0,
)

SIZES = {size.name: size for size in (TINY, QUICK, FULL)}
