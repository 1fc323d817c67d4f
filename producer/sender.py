"""Hands jobs to the broker by task name, without importing any worker code."""

from collections.abc import Iterable

from celery import Celery
from kombu.exceptions import OperationalError

from agentfleet.fleet import broker_config, celery_queues
from agentfleet.settings import Settings
from agents import RUN_TASK_NAME, AgentCatalog, route_task
from producer.errors import BrokerUnavailable

# A broker that is down is reported after these retries instead of blocking the caller.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0.2,
    "interval_step": 0.5,
    "interval_max": 1.0,
}


class TaskSender:
    def __init__(self, settings: Settings, catalog: AgentCatalog) -> None:
        self._app = Celery("agentfleet-producer", set_as_current=False)
        self._app.conf.update(broker_config(settings))
        self._app.conf.update(
            task_queues=celery_queues(catalog),
            task_routes=(route_task,),
            task_create_missing_queues=False,
            task_send_sent_event=True,
        )
        self._broker = settings.broker_url

    def send(self, jobs: Iterable[tuple[str, str]]) -> list[str]:
        """Send (job id, agent) pairs; return the ids sent.

        Raises BrokerUnavailable, carrying the ids sent before the broker failed.
        """
        sent: list[str] = []
        try:
            with self._app.producer_or_acquire() as producer:
                for job_id, agent in jobs:
                    self._app.send_task(
                        RUN_TASK_NAME,
                        kwargs={"job_id": job_id, "agent": agent},
                        producer=producer,
                        retry=True,
                        retry_policy=PUBLISH_RETRY_POLICY,
                    )
                    sent.append(job_id)
        except (OperationalError, OSError) as exc:
            raise BrokerUnavailable(
                f"broker {_redacted(self._broker)} is unavailable: {exc}", sent
            ) from exc
        except Exception as exc:
            # Whatever stopped the sending, the caller must know which jobs went out.
            raise BrokerUnavailable(
                f"sending to broker {_redacted(self._broker)} failed: {exc!r}", sent
            ) from exc
        return sent

    def close(self) -> None:
        self._app.close()


def _redacted(url: str) -> str:
    """Return a broker URL without its password."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return (
        f"{scheme}{sep}{user}:***@{host}" if ":" in credentials else f"{scheme}{sep}{user}@{host}"
    )
