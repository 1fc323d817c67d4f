"""Queue names and the Celery task router shared by producers and workers."""

from typing import Any

RUN_TASK_NAME = "agentfleet.run_job"
MAINTENANCE_QUEUE = "agentfleet.maintenance"
QUEUE_PREFIX = "agent."


def queue_for(agent_name: str) -> str:
    """Return the broker queue that carries jobs of one agent."""
    return f"{QUEUE_PREFIX}{agent_name}"


def route_task(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any], **_: Any
) -> dict[str, str]:
    """Route an agent job to its agent's queue and every other task to maintenance.

    Celery calls this for each task sent. Agent jobs carry the agent name as the
    ``agent`` keyword argument, so no job can reach the default ``celery`` queue.
    """
    if name == RUN_TASK_NAME:
        return {"queue": queue_for(kwargs["agent"])}
    return {"queue": MAINTENANCE_QUEUE}
