"""The agentfleet Celery workers: ``celery -A workers worker -Q agent.<name>``."""

from agentfleet.settings import get_settings
from workers.app import create_app

app = create_app(get_settings())

__all__ = ["app"]
