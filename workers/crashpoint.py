"""A worker that kills itself after a provider's reply arrives, before the ledger write.

Only the fault tests set AGENTFLEET_TEST_CRASH_AFTER_ANSWERS. When it is unset, nothing
happens. The fault tests use it to show that a call paid for but never recorded still
appears in the ledger, as an orphaned attempt.
"""

import logging
import os
import signal
import threading

log = logging.getLogger(__name__)

CRASH_AFTER_ANSWERS = "AGENTFLEET_TEST_CRASH_AFTER_ANSWERS"


class CrashPoint:
    """Point at which this process kills itself with SIGKILL: the ``after``-th provider reply."""

    def __init__(self, after: int | None = None) -> None:
        self._after = after
        self._answers = 0
        self._lock = threading.Lock()

    @classmethod
    def from_environ(cls) -> "CrashPoint":
        raw = os.environ.get(CRASH_AFTER_ANSWERS)
        return cls(int(raw) if raw else None)

    def answer_received(self, job_id: str) -> None:
        if self._after is None:
            return
        with self._lock:
            self._answers += 1
            reached = self._answers >= self._after
        if reached:
            log.warning("job %s: %s reached; killing this worker", job_id, CRASH_AFTER_ANSWERS)
            os.kill(os.getpid(), signal.SIGKILL)
