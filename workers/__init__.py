"""The agentfleet Celery workers: ``celery -A workers worker -Q agent.<name>``."""

import sys

from agentfleet.errors import describe
from agentfleet.settings import get_settings
from workers.app import create_app

try:
    app = create_app(get_settings())
except Exception as exc:
    message = describe(exc, database_url=None)
    if message is None:
        raise
    # A configuration mistake stops the worker or beat with one line instead of a traceback.
    program = "beat" if "beat" in sys.argv[1:] else "worker"
    print(f"agentfleet {program} cannot start: {message}", file=sys.stderr)
    raise SystemExit(2) from None

__all__ = ["app"]
