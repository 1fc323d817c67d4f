"""Ledger writes of a running job, kept until the database takes them.

A finished provider call has been paid for, so it is never repeated: while the database
is unreachable the worker keeps the result and usage and retries the write. Writes made
before a call (the claim, the attempt row) are retried the same way, so an outage delays
the job instead of dropping its message.
"""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ledger.db import transaction

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0


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
