"""The agentfleet Celery workers: ``celery -A workers worker -Q agent.<name>``."""

import sys

from agentfleet.errors import describe
from agentfleet.settings import get_settings
from workers.app import create_app

CELERY_COMMANDS = ("worker", "beat", "flower", "inspect", "control", "events", "status", "purge")


def _celery_command(args: list[str]) -> str:
    """Return the celery command in ``args``, or ``worker`` when none is found."""
    return next((arg for arg in args if arg in CELERY_COMMANDS), "worker")


try:
    app = create_app(get_settings())
except Exception as exc:
    message = describe(exc, database_url=None)
    if message is None:
        raise
    # A configuration mistake stops any celery command (worker, beat, flower, inspect...)
    # with one line instead of a traceback.
    program = _celery_command(sys.argv[1:])
    print(f"agentfleet {program} cannot start: {message}", file=sys.stderr)
    raise SystemExit(2) from None

__all__ = ["app"]
