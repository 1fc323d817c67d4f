"""Kombu's Redis transport, made safe for a worker whose pool threads still run when the
broker connection drops.

When the connection drops, Celery closes it: closing a channel puts its unacknowledged
messages back on their queues, and tasks still running acknowledge theirs later, on the
closed channel. Either can find kombu's transport without its client, and kombu 5.7 then
raises AttributeError, which Celery takes for an unrecoverable error: the worker stops.
Here both give up with a warning instead. The messages stay in Redis's unacknowledged
set, so the visibility timeout delivers them again, as after a worker crash. A job that
already finished skips the copy.
"""

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

TRANSPORT = "agentfleet.redis_broker:Transport"


class QoS(kombu_redis.QoS):
    def restore_unacked(self, client: Any = None) -> Any:
        try:
            return super().restore_unacked(client)  # type: ignore[no-untyped-call]
        except AttributeError as exc:
            log.warning(
                "broker connection already closed; %d unacknowledged message(s) will be "
                "delivered again after the visibility timeout (%s)",
                len(self._delivered),
                exc,
            )
            return None

    def ack(self, delivery_tag: str) -> None:
        try:
            super().ack(delivery_tag)  # type: ignore[no-untyped-call]
        except AttributeError as exc:
            _not_settled(delivery_tag, exc)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue)  # type: ignore[no-untyped-call]
        except AttributeError as exc:
            _not_settled(delivery_tag, exc)


def _not_settled(delivery_tag: str, exc: AttributeError) -> None:
    log.warning(
        "broker connection already closed; message %s stays unacknowledged and will be "
        "delivered again after the visibility timeout (%s)",
        delivery_tag,
        exc,
    )


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel
