"""Message counts of the agents' queues, read from the broker."""

from collections.abc import Iterable

from celery import Celery
from kombu.exceptions import ChannelError


def queue_length(app: Celery, queue: str) -> int:
    """Messages waiting in ``queue``, not counting those a worker has taken.

    A queue the broker does not know (Redis drops an empty list's key) has none.
    """
    with app.connection_for_read() as connection:
        channel = connection.channel()
        try:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
        except ChannelError:
            return 0
        finally:
            channel.close()


def empty_queues(app: Celery, queues: Iterable[str]) -> set[str]:
    return {queue for queue in queues if queue_length(app, queue) == 0}
