"""Ledger commits shared by the concurrent jobs of one worker process.

A job's ledger writes are short transactions whose cost is mostly per transaction:
a pooled connection's checkout and ping, BEGIN, COMMIT with its WAL flush, and the
session around them. Pool threads hand their writes to one writer thread, which runs
every write waiting at that moment in a single transaction. The writer never waits
for a batch to fill: a write that finds it idle is committed at once, and writes that
arrive while a batch commits form the next one.

Writes of one kind that several jobs make, such as claims or completions, can be handed
over as a BatchedWrite: the writer runs all of a batch's requests of that kind in one
call, which on PostgreSQL is one set-based statement instead of one per job.

A batch commits as a whole or not at all. When a write in it raises or the database
fails, every write of the batch is rolled back and each caller is told to run its own
write again, alone. The ledger's writes are idempotent when retried, so running one
again after a commit whose reply was lost changes nothing.
"""

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from ledger.db import transaction

log = logging.getLogger(__name__)

T = TypeVar("T")
Request = TypeVar("Request")
Result = TypeVar("Result")


class BatchFailed(Exception):
    """The batch that held this write was rolled back; the write must run again alone."""


@dataclass(frozen=True, eq=False)
class BatchedWrite(Generic[Request, Result]):
    """A kind of ledger write that runs for several jobs at once: ``many`` takes their
    requests and returns one result per request, in the same order."""

    name: str
    many: Callable[[Session, list[Request]], list[Result]]

    def one(self, session: Session, request: Request) -> Result:
        return self.many(session, [request])[0]


@dataclass
class _Pending:
    write: Callable[[Session], Any] | None
    batched: BatchedWrite[Any, Any] | None = None
    request: Any = None
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


class CommitGroup:
    """Runs ledger writes from many threads in shared transactions of up to
    ``max_batch`` writes."""

    def __init__(self, sessions: sessionmaker[Session], max_batch: int) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.writes = 0

    def run(self, write: Callable[[Session], T]) -> T:
        """Run ``write`` in the next shared transaction and return its result once that
        transaction has committed.

        Raises BatchFailed when another write of the batch failed, and the write's own
        exception when it was alone in its batch.
        """
        result: T = self._wait(_Pending(write))
        return result

    def run_batched(self, batched: BatchedWrite[Request, Result], request: Request) -> Result:
        """Run one request of a batched write in the next shared transaction, together with
        the other requests of its kind there, and return its result after the commit.

        Raises like ``run``.
        """
        result: Result = self._wait(_Pending(None, batched, request))
        return result

    def _wait(self, pending: _Pending) -> Any:
        self._start()
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result

    def close(self) -> None:
        """Commit the writes already handed over, then stop the writer thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="ledger-commit-group", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._take_more([first])
            self._commit(batch)
            if stop:
                return

    def _take_more(self, batch: list[_Pending]) -> tuple[list[_Pending], bool]:
        while len(batch) < self._max_batch:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending is None:
                return batch, True
            batch.append(pending)
        return batch, False

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            with transaction(self._sessions) as session:
                results = _run_all(session, batch)
        except BaseException as exc:
            self._fail(batch, exc)
            return
        self.batches += 1
        self.writes += len(batch)
        for pending, result in zip(batch, results, strict=True):
            pending.finish(result)

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        if len(batch) == 1:
            batch[0].finish(error=exc)
            return
        log.info(
            "shared ledger transaction of %d writes rolled back, so each write runs again "
            "alone: %s",
            len(batch),
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
        )
        for pending in batch:
            pending.finish(error=BatchFailed(f"rolled back with its batch: {exc!r}"))


def _run_all(session: Session, batch: list[_Pending]) -> list[Any]:
    """Run every write of the batch in the session; return their results in batch order."""
    results: dict[int, Any] = {}
    kinds: dict[BatchedWrite[Any, Any], list[int]] = {}
    for index, pending in enumerate(batch):
        if pending.write is not None:
            results[index] = pending.write(session)
        else:
            assert pending.batched is not None
            kinds.setdefault(pending.batched, []).append(index)
    for batched, indexes in kinds.items():
        requests = [batch[index].request for index in indexes]
        for index, result in zip(indexes, batched.many(session, requests), strict=True):
            results[index] = result
    return [results[index] for index in range(len(batch))]
