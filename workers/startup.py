"""Checks a worker makes before it consumes a single message."""

import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from agentfleet.errors import describe
from agentfleet.fleet import load_agents
from agentfleet.settings import get_settings
from ledger.db import make_engine
from ledger.errors import LedgerError
from ledger.migrate import current_revision, head_revision

EXIT_CONFIG = 2


def check_worker(queues: Any, known_queues: list[str]) -> None:
    """Stop the worker with one line when its queues, its broker settings or its ledger
    are wrong.

    A worker that consumed jobs it cannot record would drop them, so an unknown queue,
    an unreachable ledger or one without the current schema stops it at start-up.
    """
    problem = _queue_problem(queues, known_queues) or _visibility_problem() or _ledger_problem()
    if problem:
        print(f"agentfleet worker cannot start: {problem}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)


def _queue_problem(queues: Any, known: list[str]) -> str | None:
    if not queues:
        return None
    names = queues.split(",") if isinstance(queues, str) else list(queues)
    unknown = [name for name in names if name not in known]
    if not unknown:
        return None
    return (
        f"unknown queue {unknown[0]!r}; the queues are {', '.join(known)} (see 'agentfleet agents')"
    )


def _visibility_problem() -> str | None:
    """Check that Redis will not deliver a running job's message a second time.

    Redis delivers an unacknowledged message again after the visibility timeout. A job's
    message stays unacknowledged for up to its agent's deadline, because a re-enqueued job
    waits at most the time it has left, and its worker may go on recording the last call
    for the recovery grace after that. A copy that came sooner would only be skipped.
    """
    settings = get_settings()
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        return None
    longest = max(load_agents(settings).values(), key=lambda agent: agent.time_limit_s)
    needed_s = longest.time_limit_s + settings.recovery_grace_s
    if settings.broker_visibility_timeout_s >= needed_s:
        return None
    return (
        f"AGENTFLEET_BROKER_VISIBILITY_TIMEOUT_S is {settings.broker_visibility_timeout_s} s, "
        f"but agent {longest.name!r} may hold a job for {longest.time_limit_s:g} s, so Redis "
        f"would deliver it twice; set it to at least {needed_s:g} (the deadline plus "
        "AGENTFLEET_RECOVERY_GRACE_S)"
    )


def _ledger_problem() -> str | None:
    database_url = get_settings().database_url
    try:
        engine = make_engine(database_url)
        try:
            current, head = current_revision(engine), head_revision(engine)
        finally:
            engine.dispose()
    except (SQLAlchemyError, LedgerError) as exc:
        return describe(exc, database_url) or f"cannot open the ledger: {exc}"
    if current != head:
        return (
            f"the ledger is at schema revision {current or 'none'}, this worker needs {head}; "
            "run 'agentfleet db upgrade'"
        )
    return None
