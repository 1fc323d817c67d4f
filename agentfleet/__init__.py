"""agentfleet: run AI-agent jobs on Celery queues and bill tenants for the tokens they used."""

__version__ = "0.1.0"
