"""Ledger writes of a running job, kept until the database takes them.

A finished provider call has been paid for, so it is never repeated: while the database
is unreachable the worker keeps the result and usage and retries the write. Writes made
before a call (the claim, the attempt row) are retried the same way, so an outage delays
the job instead of dropping its message.

With a commit group, a write first goes into a transaction shared with other jobs'
writes. If that batch is rolled back, the write runs again alone, with the retries above.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ledger.batches import (
    AttemptRequest,
    ClaimRequest,
    Completion,
    claim_jobs,
    complete_jobs,
    open_attempts,
)
from ledger.claims import ClaimedJob, Skip
from ledger.db import transaction
from workers.commit_group import BatchedWrite, BatchFailed, CommitGroup

log = logging.getLogger(__name__)

T = TypeVar("T")
Request = TypeVar("Request")
Result = TypeVar("Result")

CLAIM: BatchedWrite[ClaimRequest, ClaimedJob | Skip] = BatchedWrite("claim", claim_jobs)
OPEN_ATTEMPT: BatchedWrite[AttemptRequest, str] = BatchedWrite("open attempt", open_attempts)
COMPLETE: BatchedWrite[Completion, bool] = BatchedWrite("complete", complete_jobs)
# Errors of a shared transaction after which a write runs again in one of its own.
RUN_ALONE = (BatchFailed, OperationalError, InterfaceError)

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0


@dataclass(frozen=True)
class LedgerWriter:
    """The ledger writes of one worker process's jobs."""

    sessions: sessionmaker[Session]
    group: CommitGroup | None
    give_up_after_s: float
    sleep: Callable[[float], None] = time.sleep

    def write(self, job_id: str, write: Callable[[Session], T]) -> T:
        """Run ``write`` in a committed transaction, shared with other jobs' writes when
        the process has a commit group, and return its result."""
        if self.group is not None:
            try:
                return self.group.run(write)
            except RUN_ALONE:
                pass
        return self._alone(job_id, write)

    def write_batched(
        self, job_id: str, batched: BatchedWrite[Request, Result], request: Request
    ) -> Result:
        """Run one request of a batched write, with the same requests of other jobs when
        the process has a commit group, and return its result."""
        if self.group is not None:
            try:
                return self.group.run_batched(batched, request)
            except RUN_ALONE:
                pass
        return self._alone(job_id, lambda session: batched.one(session, request))

    def _alone(self, job_id: str, write: Callable[[Session], T]) -> T:
        return write_after_call(
            self.sessions, job_id, write, give_up_after_s=self.give_up_after_s, sleep=self.sleep
        )


def write_after_call(
    sessions: sessionmaker[Session],
    job_id: str,
    write: Callable[[Session], T],
    *,
    give_up_after_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``write`` in a transaction, retrying on connection errors for up to
    ``give_up_after_s``; after that the error is raised and the recovery task takes over."""
    delay_s = FIRST_DELAY_S
    give_up_at = time.monotonic() + give_up_after_s
    while True:
        try:
            with transaction(sessions) as session:
                return write(session)
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay_s > give_up_at:
                log.error(
                    "job %s: ledger still unreachable after %.0f s; giving up the write",
                    job_id,
                    give_up_after_s,
                )
                raise
            log.warning(
                "job %s: ledger unreachable (%s); retrying the write in %.1f s",
                job_id,
                _reason(exc),
                delay_s,
            )
            sleep(delay_s)
            delay_s = min(delay_s * 2, MAX_DELAY_S)


def _reason(exc: OperationalError | InterfaceError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
