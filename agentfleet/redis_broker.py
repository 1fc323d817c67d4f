"""Kombu's Redis transport, made safe for a worker whose pool threads still run when the
broker connection drops.

When the connection drops, Celery closes it: closing a channel puts its unacknowledged
messages back on their queues, and tasks still running acknowledge theirs later, on the
closed channel. Either can find kombu's transport without its client, and kombu 5.7 then
raises AttributeError, which Celery takes for an unrecoverable error: the worker stops.
Here both give up with a warning instead. The messages stay in Redis's unacknowledged
set, so the visibility timeout delivers them again, as after a worker crash. A job that
already finished skips the copy.

A worker with a green pool (gevent) has no event loop, so its consumer waits in
``drain_events``. Once every pool slot has a message, kombu stops reading from Redis and
waits for up to two seconds, so such a worker took new jobs only every two seconds. Here
an acknowledgement that frees a slot ends that wait at once, through a pipe the poller
watches.
"""

import contextlib
import logging
import os
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.utils.eventio import READ

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
        self._credit_returned()

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue)  # type: ignore[no-untyped-call]
        except AttributeError as exc:
            _not_settled(delivery_tag, exc)
        self._credit_returned()

    def _credit_returned(self) -> None:
        cycle = getattr(getattr(self.channel, "connection", None), "cycle", None)
        if isinstance(cycle, Poller):
            cycle.wake()


def _not_settled(delivery_tag: str, exc: AttributeError) -> None:
    log.warning(
        "broker connection already closed; message %s stays unacknowledged and will be "
        "delivered again after the visibility timeout (%s)",
        delivery_tag,
        exc,
    )


class Poller(kombu_redis.MultiChannelPoller):
    """kombu's poller of the channels' sockets, with a pipe that ends a wait early.

    Only ``get`` registers the pipe, because ``get`` is the path of a consumer without an
    event loop. A worker with an event loop polls the sockets itself.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._wake_read: int | None = None
        self._wake_write: int | None = None
        self._woken = False

    @property
    def fds(self) -> dict[int, Any]:
        fds: dict[int, Any] = super().fds
        if self._wake_read is not None:
            fds = {**fds, self._wake_read: None}
        return fds

    def get(self, callback: Any, timeout: float | None = None) -> Any:
        if self._wake_read is None:
            self._wake_read, self._wake_write = os.pipe()
            os.set_blocking(self._wake_read, False)
            os.set_blocking(self._wake_write, False)
            self.poller.register(self._wake_read, READ)
        return super().get(callback, timeout)  # type: ignore[no-untyped-call]

    def wake(self) -> None:
        """End the current wait of ``get``; do nothing when ``get`` is not waiting."""
        if self._wake_write is None or self._woken or not self._in_protected_read:
            return
        self._woken = True
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_write, b"\0")

    def handle_event(self, fileno: int, event: int) -> Any:
        if fileno == self._wake_read:
            return self._drain_wake_pipe(fileno)
        return super().handle_event(fileno, event)  # type: ignore[no-untyped-call]

    def on_readable(self, fileno: int) -> Any:
        if fileno == self._wake_read:
            return self._drain_wake_pipe(fileno)
        return super().on_readable(fileno)  # type: ignore[no-untyped-call]

    def _drain_wake_pipe(self, fileno: int) -> None:
        self._woken = False
        with contextlib.suppress(BlockingIOError):
            while os.read(fileno, 512):
                pass

    def close(self) -> None:
        super().close()  # type: ignore[no-untyped-call]
        if self._wake_read is not None and self._wake_write is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(self._wake_read)
            os.close(self._wake_read)
            os.close(self._wake_write)
        self._wake_read = self._wake_write = None
        self._woken = False


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.cycle = Poller()  # type: ignore[assignment]
